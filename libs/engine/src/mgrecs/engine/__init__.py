"""The recommender: pure computation over interactions (no Kafka, no HTTP, no database).

Import its modules (`mgrecs.engine.model`, `mgrecs.engine.records`, ...); the package itself
imports nothing, so a service reading only the order-lines format (`order_lines`) does not
load numpy, scipy and implicit."""
