"""The note's training procedure (Procedural Summary, steps 3-8): sanity checks, the learning-rate search,
and the diagnosis of a finished run."""
