"""Batch jobs on schedule ticks: retrain the model, fill the recommendation cache tables."""
