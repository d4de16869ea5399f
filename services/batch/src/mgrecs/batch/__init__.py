"""Batch jobs on schedule ticks: retrain the model, fill the recommendation cache tables.

Other applications (the `mgrecs` CLI) import only `mgrecs.batch.public`.
"""
