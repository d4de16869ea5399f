"""Tests of the storage layer (libs/store, mgrecs.store) on the real PostgreSQL."""
