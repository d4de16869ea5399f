"""Tests of the recommender library (libs/engine, mgrecs.engine) on data whose answers are known."""
