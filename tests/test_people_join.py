"""The join's own ordering rules, on evidence stored through the pipeline: two sources that
name an account alike keep one record each (the later source's key suffixed with its name),
and a person's record lists their accounts by source and key, whichever source was read first;
alike whether the run stores them itself or through a writer process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.registry import load_all
from collector import migrate
from collector.config import Config
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.model import Resource, Scope
from collector.people.records import ACCOUNT, SOURCE
from collector.people.report import review
from collector.people.run import collect_people
from collector.pipeline import collect_source
from collector.schema import now
from collector.store import BLOBS, VERSIONS, decompress

# One IAM user ARN that both AWS sources name: a copy of one account's evidence in two sources.
ARN = "arn:aws:iam::111111111111:user/alice@example.com"


def _user(scope: Scope, name: str, *, key: bool) -> Resource:
    return scope.resource("aws.iam.user", ARN if name == "alice" else f"{ARN[:-17]}{name}", {
        "UserName": f"{name}@example.com" if name == "alice" else name,
        "AttachedManagedPolicies": [], "UserPolicyList": [], "Tags": [],
        "credential_report": {"password_enabled": False, "mfa_active": True,
                              "access_keys": [{"slot": 1, "active": key}]}})


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_accounts_named_alike_in_two_sources_keep_a_record_each(
        tmp_path: Path, database_url: str, writer: str) -> None:
    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    cfg = Config.model_validate({
        "database": database_url, "signing_key": str(tmp_path / "signing.key"),
        "sources": [
            {"name": "workspace", "kind": "google_workspace", "admin_email": "a@example.com"},
            # Listed before aws-a: the records' order must not follow the sources'.
            {"name": "aws-b", "kind": "aws", "regions": ["us-east-1"]},
            {"name": "aws-a", "kind": "aws", "regions": ["us-east-1"]}],
        "people": {"authoritative": "workspace"}, "writer": writer})
    signer = load_or_create_signer(cfg.signing_key)
    ws = Scope("google_workspace", "C0", "google_workspace:customer:C0")
    aws = Scope("aws", "111111111111", "aws:account:111111111111")
    streams = {
        "workspace": [ws, ws.resource("google_workspace.user", "google_workspace:user:1", {
            "id": "1", "primaryEmail": "alice@example.com", "suspended": True,
            "isEnrolledIn2Sv": True})],
        "aws-b": [aws, _user(aws, "alice", key=True)],
        "aws-a": [aws, _user(aws, "alice", key=False), _user(aws, "zed", key=True)]}
    for source in cfg.sources:
        out = collect_source(engine, source, signer, items=streams[source.name],
                             writer="inline")
        assert out.status == "complete", out
    joined = collect_people(engine, cfg, signer)
    assert (joined.status, joined.extra["writer"]) == ("complete", writer)

    with engine.connect() as conn:
        records = {key: json.loads(decompress(body)) for key, body in conn.execute(
            sa.select(VERSIONS.c.key, BLOBS.c.body)
            .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
            .where(VERSIONS.c.source == SOURCE, VERSIONS.c.kind == ACCOUNT))}
        people = review(conn, now())["people"]
    zed = f"{ARN[:-17]}zed"
    assert set(records) == {"google_workspace:user:1", ARN, f"{ARN}#aws-b", zed}
    assert (records[ARN]["source"], records[ARN]["active"]) == ("aws-a", False)
    assert (records[f"{ARN}#aws-b"]["source"], records[f"{ARN}#aws-b"]["active"]) == (
        "aws-b", True)
    assert records[zed]["person"] is None and records[zed]["candidates"] == []
    assert [(p["person"], p["status"]) for p in people] == [("alice@example.com", "suspended")]
    assert [(a["source"], a["key"], a["active"]) for a in people[0]["accounts"]] == [
        ("aws-a", ARN, False), ("aws-b", ARN, True),
        ("workspace", "google_workspace:user:1", False)]
