"""Checkpoints: reading them safely, writing them atomically, a run that starts from one (its configuration,
resume, training on, a requeued SLURM job)."""
