"""Consumes `orders`: one consumer group writes PostgreSQL, another forwards PutEvents."""
