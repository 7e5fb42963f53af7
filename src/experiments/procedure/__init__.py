"""The note's procedure (steps 3-8): sanity checks, the learning-rate search, the loss-curve verdict."""
