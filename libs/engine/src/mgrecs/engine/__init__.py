"""The recommender: pure computation over interactions (no Kafka, no HTTP, no database)."""

from mgrecs.engine.model import CooccurrenceModel, RecommenderModel
from mgrecs.engine.records import Interaction, Scored

__all__ = ["CooccurrenceModel", "Interaction", "RecommenderModel", "Scored"]
