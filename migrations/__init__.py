"""Alembic migrations: the only way Annexa's schema changes."""
