"""A run of the derived source `annexa-people`: it reads the latest sealed state of the sources
it joins (never an API), builds the people, and goes through the same pipeline as any
collection: stored, judged by checks/people, sealed into the chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from sqlalchemy import Engine

from collector.config import Config, SourceConfig
from collector.ledger import Signer
from collector.model import CollectionError, Resource, Scope
from collector.people.join import join
from collector.people.mapping import load as load_mapping
from collector.people.records import SOURCE, items
from collector.pipeline import RunOutcome, collect_source


def joined_sources(cfg: Config) -> list[str]:
    return [source.name for source in cfg.sources]


def collect_people(engine: Engine, cfg: Config, signer: Signer, *,
                   stop: threading.Event | None = None, wait: float = 0.0) -> RunOutcome:
    """Join and judge the people now. Raises MappingError (nothing stored) for a mapping file
    that cannot be used, and SourceBusy when another process is joining them."""
    assert cfg.people is not None, "people: is not configured"
    people = cfg.people
    mapping = load_mapping(people.mapping)

    def stream() -> Iterator[Scope | Resource | CollectionError]:
        with engine.connect() as conn:
            joined = join(conn, people.authoritative, joined_sources(cfg), mapping)
        with joined:
            yield from items(joined)

    derived = SourceConfig.model_construct(name=SOURCE, kind="people", schedule=people.schedule)
    # Stored like any source's run: `writer: auto` moves a large first run to a writer
    # process, which then holds the store's page cache and batches instead of this one.
    return collect_source(engine, derived, signer, stop=stop, items=stream(),
                          writer=cfg.writer, wait=wait)
