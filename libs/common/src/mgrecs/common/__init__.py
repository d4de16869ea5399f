"""Shared pieces of every mgrecs service: settings, schemas, storage, topics, clients."""
