"""Schema upgrades through Alembic, and the guard that refuses an un-migrated database.

The guard runs before every command that opens the store, and it does not import Alembic:
Alembic and its script machinery cost a collection about 6 MB of peak memory for one query.
It reads Alembic's version table itself and finds the head revision from the migration files'
`revision` and `down_revision` assignments. `annexa db upgrade` still runs Alembic.
"""

from __future__ import annotations

import ast
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic's default version table, which migrations/env.py keeps.
VERSION_TABLE = "alembic_version"


class NotMigrated(RuntimeError):
    pass


def _config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("migrations")))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def _revision_ids(path: Path) -> tuple[str, str | None] | None:
    """(revision, down_revision) assigned at the top of a migration file, or None if it has
    none. A merge revision (down_revision a tuple) would need Alembic's graph: refused."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("revision", "down_revision")):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    if "revision" not in found:
        return None
    revision, down = found["revision"], found.get("down_revision")
    if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
        raise RuntimeError(f"{path.name}: only a linear history of revisions is supported")
    return revision, down


def head() -> str:
    versions = Path(str(files("migrations"))) / "versions"
    links = [ids for path in sorted(versions.glob("*.py")) if (ids := _revision_ids(path))]
    parents = {down for _, down in links}
    heads = [revision for revision, _ in links if revision not in parents]
    if len(heads) != 1:
        raise RuntimeError(f"migrations: expected one head revision, found {sorted(heads)}")
    return heads[0]


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        revisions = list(conn.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))
    if len(revisions) > 1:
        raise RuntimeError(f"{VERSION_TABLE} holds several revisions: {sorted(revisions)}")
    return revisions[0] if revisions else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command

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
