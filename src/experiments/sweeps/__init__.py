"""Sweeps: trial folders and names, the sweep's preflight, summaries, heatmaps, Optuna studies, the lock."""
