"""What a run leaves for people: metrics.json, status.json, the final table, figures, pictures, trackers."""
