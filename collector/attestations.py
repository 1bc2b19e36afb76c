"""Attestations: the evidence of manual controls (policies, people, physical security,
suppliers). An attestation is an owner's statement about one control, with optional documents
and a review period; it is current until its review date and `stale` after it.

Each attestation is one sealed run of the reserved source `annexa-attestations` holding the
attestation (kind `annexa.attestation`, key `annexa:attestation:<id>`, canonical JSON) and each
document as it was given (kind `annexa.document`, key `annexa:document:<sha256>`, the raw
bytes: any format, content-addressed, stored once). These runs only add: no later run closes an
attestation, so every run's Merkle root covers every attestation made so far, and one made in
the past stays provable. For status, the newest attestation of a control supersedes the older.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from checks.catalogue import controls as catalogue
from collector import manual_ledger, soa
from collector.canonical import canonical, sha256_hex
from collector.config import parse_duration
from collector.ledger import Signer
from collector.manual_ledger import Item, RunRef
from collector.safe_output import printable
from collector.schema import now

SOURCE = "annexa-attestations"
KIND = "annexa.attestation"
DOCUMENT_KIND = "annexa.document"
DEFAULT_REVIEW = "365d"
MAX_DOCUMENT_BYTES = 50 * 2**20
MAX_STATEMENT_CHARS = 20_000
MAX_NAME_CHARS = 255


class AttestationError(ValueError):
    """An attestation that cannot be stored, and why; nothing was stored."""


class ExcludedControl(AttestationError):
    """The SoA in force excludes the control: an attestation would not count."""


@dataclass(frozen=True)
class Document:
    name: str
    content: bytes


@dataclass(frozen=True)
class Attestation:
    id: str
    control: str
    statement: str
    owner: str
    attested_at: datetime
    review_every: str
    review_due: datetime
    documents: list[dict[str, Any]]  # name, digest (SHA-256 of the bytes), size
    submitted_by: str
    run: int | None = None  # the run that recorded it

    def current(self, at: datetime) -> bool:
        return at < self.review_due

    def record(self) -> dict[str, Any]:
        """What the ledger holds (the run is where it is held, so not part of it)."""
        return {
            "id": self.id, "control": self.control, "statement": self.statement,
            "owner": self.owner, "attested_at": self.attested_at.isoformat(),
            "review_every": self.review_every, "review_due": self.review_due.isoformat(),
            "documents": self.documents, "submitted_by": self.submitted_by,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.record(), "run": self.run}

    @classmethod
    def from_record(cls, data: dict[str, Any], run: int) -> Attestation:
        return cls(data["id"], data["control"], data["statement"], data["owner"],
                   datetime.fromisoformat(data["attested_at"]), data["review_every"],
                   datetime.fromisoformat(data["review_due"]), data["documents"],
                   data["submitted_by"], run)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a document's name, if it cannot. A name is only a label (documents
    are stored by digest), but whoever later saves a document under it must not be led out of
    their folder, nor shown a name that is not what it seems."""
    if not name or len(name) > MAX_NAME_CHARS:
        return f"a document name has 1 to {MAX_NAME_CHARS} characters"
    if "/" in name or "\\" in name:
        return "a document name is a file name, without a directory ('/' or '\\')"
    if name in (".", ".."):
        return f"{name!r} names a directory, not a file"
    if printable(name) != name:  # a character that acts on a terminal or reads reversed
        return "a document name has no control characters"
    return None


def read_documents(paths: list[str]) -> list[Document]:
    """The files named by `--file`, or AttestationError naming the first that cannot be read."""
    out = []
    for name in paths:
        path = Path(name)
        try:
            size = path.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                raise AttestationError(f"--file {name}: {size} bytes, more than the "
                                       f"{MAX_DOCUMENT_BYTES} a document may have")
            out.append(Document(path.name, path.read_bytes()))
        except FileNotFoundError:
            raise AttestationError(f"--file {name}: no such file") from None
        except IsADirectoryError:
            raise AttestationError(f"--file {name}: is a directory, not a file") from None
        except OSError as exc:
            raise AttestationError(f"--file {name}: cannot read: {exc.strerror}") from None
    return out


def review_period(text: str) -> timedelta:
    try:
        period = parse_duration(text)
    except ValueError as exc:
        raise AttestationError(f"--review-every: {exc}") from None
    if period <= timedelta(0):
        raise AttestationError(f"--review-every {text!r}: the review period must be positive")
    return period


def attest(engine: Engine, signer: Signer, control: str, statement: str, owner: str,
           documents: list[Document], review_every: str = DEFAULT_REVIEW,
           submitted_by: str = "cli") -> tuple[Attestation, RunRef]:
    """Validate, then store and seal the attestation and its documents in one run. Raises
    AttestationError (ExcludedControl when the SoA in force excludes the control)."""
    if control not in catalogue():
        raise AttestationError(f"{control!r} is not an Annex A 2022 control id such as A.5.1")
    if not statement.strip():
        raise AttestationError("--statement is empty: say what is in place and how")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise AttestationError(f"--statement has {len(statement)} characters, more than "
                               f"{MAX_STATEMENT_CHARS}: attach the long text as a --file")
    if not soa.EMAIL.match(owner):
        raise AttestationError(f"--owner {owner!r} is not an email address")
    period = review_period(review_every)
    for doc in documents:
        problem = name_problem(doc.name)
        if problem:
            raise AttestationError(f"document {doc.name!r}: {problem}")
        if len(doc.content) > MAX_DOCUMENT_BYTES:
            raise AttestationError(f"document {doc.name!r}: {len(doc.content)} bytes, more "
                                   f"than the {MAX_DOCUMENT_BYTES} a document may have")
    at = now()
    with engine.connect() as conn:
        in_force = soa.soa_at(conn, at)
    entry = in_force.entries.get(control)
    if entry is not None and not entry.applicable and in_force.run is not None:
        raise ExcludedControl(f"{control} is excluded by the Statement of Applicability in "
                              f"force (run {in_force.run.run_id}, #{in_force.run.seq}): "
                              "include it there before attesting it")
    attestation = Attestation(
        id=str(uuid.uuid4()), control=control, statement=statement, owner=owner,
        attested_at=at, review_every=review_every, review_due=at + period,
        documents=[{"name": d.name, "digest": sha256_hex(d.content), "size": len(d.content)}
                   for d in documents],
        submitted_by=submitted_by)
    items = [Item(DOCUMENT_KIND, f"annexa:document:{sha256_hex(d.content)}", d.content)
             for d in documents]
    items.append(Item(KIND, f"annexa:attestation:{attestation.id}",
                      canonical(attestation.record())))
    written = manual_ledger.write_run(engine, signer, SOURCE, items, replace=False)
    return replace(attestation, run=written.run.run_id), written.run


def made_by(conn: Connection, at: datetime) -> tuple[RunRef | None, list[Attestation]]:
    """Every attestation recorded by the last `annexa-attestations` run sealed by `at`."""
    run = manual_ledger.last_run(conn, SOURCE, at)
    if run is None:
        return None, []
    found = [Attestation.from_record(json.loads(body), since)
             for _key, since, body in manual_ledger.bodies_at(conn, SOURCE, KIND, run)]
    return run, found


def latest_at(conn: Connection, at: datetime) -> dict[str, Attestation]:
    """Per control, the attestation in force at `at`: the newest one recorded by then."""
    out: dict[str, Attestation] = {}
    for att in made_by(conn, at)[1]:
        held = out.get(att.control)
        if held is None or (att.attested_at, att.run or 0) > (held.attested_at, held.run or 0):
            out[att.control] = att
    return out
