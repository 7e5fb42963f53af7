"""The note's NumPy MLP and fixed kernels, without torch, and what their commands share with train.py."""
