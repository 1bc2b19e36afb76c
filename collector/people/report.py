"""`annexa people`: the access review report (every person's accounts and privileges in every
source, as of an instant, with the evidence digests), and a leaver's timeline."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from collector.canonical import canonical, sha256_hex
from collector.chain import RUNS
from collector.manual_ledger import bodies_at, last_run
from collector.people.identities import GONE
from collector.people.records import PERSON, SOURCE, person_key
from collector.safe_output import CsvWriter
from collector.store import BLOBS, VERSIONS, decompress


class NoPeople(LookupError):
    """No sealed run of the people source had finished by the instant asked for."""


def review(conn: Connection, at: datetime, person: str | None = None,
           privileged: bool = False) -> dict[str, Any]:
    """{"as_of": the run it rests on, "people": [...]}: each person as the authoritative
    identity provider says (`status`), with every account (`source`, `key`, `active`,
    `privileged`, its privileges, MFA and the digest of the evidence it was read from)."""
    run = last_run(conn, SOURCE, at)
    if run is None:
        raise NoPeople(f"no people were joined by {at.isoformat()} (configure `people:` and "
                       "run `annexa collect`)")
    wanted = person.lower() if person else None
    people = []
    for key, _, body in bodies_at(conn, SOURCE, PERSON, run):
        if wanted and key != person_key(wanted):
            continue
        record = json.loads(body)
        accounts = [{"source": a["source"], "key": a["key"], "active": a["active"],
                     "privileged": a["privileged"], "privileges": a["privileges"],
                     "mfa": a["mfa"], "evidence": a["evidence"]} for a in record["accounts"]]
        if privileged and not any(a["privileged"] for a in accounts):
            continue
        people.append({"person": record["email"], "status": record["status"],
                       "mfa": record["mfa"], "evidence": sha256_hex(body),
                       "accounts": accounts})
    people.sort(key=lambda p: p["person"])
    return {"as_of": {**run.as_dict(), "at": at.isoformat()}, "people": people}


def digest(report: dict[str, Any]) -> str:
    """The report's own digest, for the reviewer's attestation on A.5.18 to cite."""
    return sha256_hex(canonical(report["people"]))


def as_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(["person", "status", "source", "account", "active", "privileged",
                     "privileges", "mfa", "evidence"])
    for p in report["people"]:
        for a in p["accounts"]:
            writer.writerow([p["person"], p["status"], a["source"], a["key"], a["active"],
                             a["privileged"], "; ".join(a["privileges"]), a["mfa"],
                             a["evidence"]])
    return out.getvalue()


def as_html(report: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(p['person'])}</td><td>{e(p['status'])}</td><td>{e(a['source'])}</td>"
        f"<td><code>{e(a['key'])}</code></td><td>{e(str(a['active']))}</td>"
        f"<td>{e(', '.join(a['privileges']) or '-')}</td><td>{e(str(a['mfa']))}</td>"
        f"<td><code>{e(a['evidence'][:16])}</code></td></tr>"
        for p in report["people"] for a in p["accounts"])
    as_of = report["as_of"]
    return ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Access review "
            f"as of {e(as_of['at'])}</title><h1>Access review as of {e(as_of['at'])}</h1>"
            f"<p>People joined in run {as_of['run']} (#{as_of['seq']}, chain hash "
            f"<code>{e(as_of['chain_hash'])}</code>). Report digest "
            f"<code>{digest(report)}</code>.</p><table><thead><tr><th>person</th><th>status"
            "</th><th>source</th><th>account</th><th>active</th><th>privileges</th><th>MFA"
            f"</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table></html>\n")


def history(conn: Connection, email: str) -> dict[str, Any]:
    """When the identity provider set the person's status, and when each of their accounts
    stopped being usable (or vanished), as the ledger saw it: run by run of the people
    source, with the gap in hours after the person left."""
    email = email.lower()
    key = person_key(email)
    runs = {row.id: row.finished_at for row in conn.execute(
        sa.select(RUNS.c.id, RUNS.c.finished_at).where(RUNS.c.source == SOURCE,
                                                       RUNS.c.seq.is_not(None)))}
    versions = list(_versions(conn, [key]))
    if not versions:
        raise NoPeople(f"{email} was never among the people joined")
    left_at: datetime | None = None
    status_changes = []
    accounts: dict[tuple[str, str], dict[str, Any]] = {}
    for since, until, record in versions:
        seen_at = runs.get(since)
        status_changes.append({"status": record["status"], "seen_at": _iso(seen_at),
                               "until": _iso(runs.get(until)) if until else None})
        if record["status"] in GONE and left_at is None:
            left_at = seen_at
        elif record["status"] not in GONE:
            left_at = None
        for account in record["accounts"]:
            entry = accounts.setdefault((account["source"], account["key"]),
                                        {"source": account["source"], "key": account["key"],
                                         "removed_at": None})
            entry["active_at_last_sight"] = account["active"]
            entry["last_seen"] = _iso(runs.get(until)) if until else None
            if not account["active"] and entry["removed_at"] is None:
                entry["removed_at"] = _iso(seen_at)
            elif account["active"]:
                entry["removed_at"] = None
    last_accounts = {(a["source"], a["key"]) for a in versions[-1][2]["accounts"]}
    for ident, entry in accounts.items():
        if ident not in last_accounts and entry["removed_at"] is None:
            entry["removed_at"] = entry["last_seen"]  # gone from its source
        if left_at and entry["removed_at"]:
            removed = datetime.fromisoformat(entry["removed_at"])
            entry["gap_hours"] = round(max((removed - left_at).total_seconds(), 0) / 3600, 1)
        else:
            entry["gap_hours"] = None
        entry.pop("last_seen", None)
    return {"person": email, "left_at": _iso(left_at), "status": status_changes,
            "accounts": sorted(accounts.values(), key=lambda a: (a["source"], a["key"]))}


def _versions(conn: Connection, keys: list[str]) -> Iterator[tuple[int, int | None, dict]]:
    rows = conn.execute(
        sa.select(VERSIONS.c.valid_from_run, VERSIONS.c.valid_to_run, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == SOURCE, VERSIONS.c.kind == PERSON,
               VERSIONS.c.key.in_(keys)).order_by(VERSIONS.c.valid_from_run))
    for since, until, body in rows:
        if body is not None:
            yield since, until, json.loads(decompress(body))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
