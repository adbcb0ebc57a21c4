"""Data sources, one per file, registered by name (`source: <name>` in a recipe)."""
