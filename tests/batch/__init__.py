"""Tests of the batch service (services/batch, mgrecs.batch): retrain, infer, jobs and ticks."""
