"""The note's machinery without a framework: the NumPy MLP with hand-written backpropagation (`network`)
and the fixed convolution kernels (`fixed_kernels`). Neither imports torch. The commands that feed them
dataset images are `python -m experiments.scratch` and `python -m experiments.kernels`."""
