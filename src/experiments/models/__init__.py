"""Backbones. Each takes `input_shape` (C, H, W) and `num_classes` from the datamodule and returns logits."""
