"""Sweeps: stable directories, readable trial names, resume, the 3x divergence rule's bookkeeping, summaries."""
