"""The storage layer: PostgreSQL's tables, their migrations and every SQL statement.

One module per group of tables; routes, workers and tests call these functions, never SQL of
their own. Each fact about the data (the active model, the current cache generation, an order
line's event id) is defined once here and imported.
"""
