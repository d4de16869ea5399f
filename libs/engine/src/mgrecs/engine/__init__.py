"""The recommender: pure computation over interactions (no Kafka, no HTTP, no database)."""
