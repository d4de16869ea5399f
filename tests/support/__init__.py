"""Shared test helpers and factories, imported as `support.<module>` (tests/ is on sys.path)."""
