"""Pictures a run draws outside Lightning's loop: its training inputs, its first layer, its loss curve."""
