"""The recommendations HTTP API the frontend calls (users, similar items, regions)."""
