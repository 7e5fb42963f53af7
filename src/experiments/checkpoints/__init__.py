"""Checkpoints: safe reading, atomic writing, a run from a checkpoint, resume, training on, a requeued SLURM job."""
