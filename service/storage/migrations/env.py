"""Alembic's environment for Omni's store: run on the connection `service.storage.migrate`
hands over (never from alembic.ini); the target is the current table definitions."""

from __future__ import annotations

from alembic import context

from service.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
