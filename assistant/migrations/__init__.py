"""Alembic migrations for `assistant.db`, shipped inside the package (run by `Database.migrate()`)."""
