"""Tests of the engine service (services/engine, mgrecs.engine_service)."""
