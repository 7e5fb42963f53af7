"""Backbones: each takes `input_shape` and `num_classes` from the datamodule and returns logits."""
