"""Pictures a training run draws outside Lightning's loop: what goes into the net before it trains, and
what its first layer learned after. (The test-split pictures need the test batches: they are a callback,
callbacks/prediction_figures.py.)"""
