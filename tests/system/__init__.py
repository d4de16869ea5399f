"""Cross-cutting tests: end-to-end journeys, drills, package boundaries, infrastructure."""
