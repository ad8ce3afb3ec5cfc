"""The serving side: settings, storage through SQLAlchemy, and (later) the scoring API."""
