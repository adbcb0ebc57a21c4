"""Data steps, one per file, registered by name (`step: <name>` in a recipe)."""
