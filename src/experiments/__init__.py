"""experiments: one-command PyTorch Lightning + Hydra experiments from a deep-learning course note.

Importing the package is cheap on purpose: torch and Lightning load only when training starts.
"""
