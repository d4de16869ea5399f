"""The recommender: pure computation over interactions (no Kafka, no HTTP, no database)."""

from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Interaction, Scored

__all__ = ["Interaction", "RecommenderModel", "Scored"]
