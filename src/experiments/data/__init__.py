"""Datamodules: every split held once as a uint8 tensor, served as whole batches by index; the embedded sample."""
