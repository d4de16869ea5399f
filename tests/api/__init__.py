"""Tests of the API service (services/api, mgrecs.api): its endpoints, caches and dashboard."""
