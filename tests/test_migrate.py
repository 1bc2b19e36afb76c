"""The schema guard reads Alembic's version table without Alembic: it must agree with Alembic."""

from __future__ import annotations

from importlib.resources import files

import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from collector import migrate
from collector.db import engine_for


def _alembic_current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_head_is_alembics_head():
    assert [migrate.head()] == ScriptDirectory(str(files("migrations"))).get_heads()


def test_current_agrees_with_alembic_before_and_after_upgrade(database_url):
    engine = engine_for(database_url, check_schema=False)
    try:
        assert migrate.current(engine) is None
        assert _alembic_current(engine) is None
        with pytest.raises(migrate.NotMigrated, match="has no Annexa schema"):
            migrate.require_current(engine)
        assert migrate.upgrade(engine) == (None, migrate.head())
        assert migrate.current(engine) == _alembic_current(engine) == migrate.head()
        migrate.require_current(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        with pytest.raises(migrate.NotMigrated, match=f"revision 0001, not {migrate.head()}"):
            migrate.require_current(engine)
    finally:
        engine.dispose()
