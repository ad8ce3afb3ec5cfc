"""The event store and reference data, through SQLAlchemy Core (SQLite or PostgreSQL)."""
