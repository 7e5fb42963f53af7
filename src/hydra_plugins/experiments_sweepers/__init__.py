"""Hydra sweepers of the `experiments` project (Hydra finds plugins only under `hydra_plugins`)."""
