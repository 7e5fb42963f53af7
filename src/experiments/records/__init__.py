"""What a run leaves for people: metrics.json, status.json, the final table, figures and pictures, and the
trackers they go to."""
