"""Schema upgrades through Alembic, and the guard that refuses an un-migrated database."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


class NotMigrated(RuntimeError):
    pass


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("migrations")))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head() -> str:
    heads = ScriptDirectory(str(files("migrations"))).get_heads()
    return heads[0]


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    before = current(engine)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head()


def require_current(engine: Engine) -> None:
    rev = current(engine)
    if rev != head():
        where = engine.url.render_as_string(hide_password=True)
        state = "has no Annexa schema" if rev is None else f"is at revision {rev}, not {head()}"
        raise NotMigrated(f"database {where} {state}: run `annexa db upgrade` first")
