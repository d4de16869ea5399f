"""Tests of the ingest service (services/ingest, mgrecs.ingest): push, backfill, connector."""
