"""Decontamination: one n-gram module for the train-side step and the eval-side report."""
