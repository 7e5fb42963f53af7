"""A grid of trials trained as one batched model (hydra/launcher=fused), each trial keeping its own results."""
