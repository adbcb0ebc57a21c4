"""Data: sources -> canonical examples -> steps -> TRL-format dataset, manifest and card."""
