"""Alembic environment: runs on the connection `gateway.store.migrate` hands over (sync side)."""

from alembic import context

from gateway.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
