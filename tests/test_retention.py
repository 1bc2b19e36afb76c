"""Retention on SQLite and PostgreSQL: `annexa prune` drops exactly the bodies that no version
valid in any source's retained period needs, seals the pruning as a run first, keeps every
digest; verify still passes, and tells a sealed pruning from a body that was deleted; snapshots
and bundles of the pruned period say which bodies are gone."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
import yaml

from checks.registry import load_all
from collector import migrate
from collector.canonical import canonical, sha256_hex
from collector.cli import main
from collector.config import Config
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.model import Scope
from collector.pipeline import collect_source
from collector.retention import SOURCE, prune
from tests.helpers import annexa, write_config

SCOPE = Scope("aws", "111111111111", "aws:account:111111111111")


def _config(tmp_path: Path, url: str) -> Config:
    cfg = {"database": url, "signing_key": str(tmp_path / "signing.key"),
           "sources": [{"name": "aws-a", "kind": "aws", "regions": ["us-east-1"],
                        "retention": "7d"},
                       {"name": "aws-b", "kind": "aws", "regions": ["us-east-1"]}]}
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return Config.model_validate({**cfg, "path": path})


def _collect(engine, cfg: Config, source: str, resources: dict[str, dict]) -> None:
    items = [SCOPE, *(SCOPE.resource("aws.s3.bucket", key, data)
                      for key, data in resources.items())]
    [src] = [s for s in cfg.sources if s.name == source]
    out = collect_source(engine, src, load_or_create_signer(cfg.signing_key), items=iter(items),
                         writer="inline")
    assert out.status == "complete", out.message


def _digest(data: dict) -> str:
    return sha256_hex(canonical(data))


def _bodies(url: str) -> dict[str, bool]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {d: b is not None for d, b in conn.execute(sa.text(
                "SELECT digest, body FROM blobs"))}
    finally:
        engine.dispose()


@pytest.fixture
def history(tmp_path, database_url):
    """aws-a (retention 7d) saw one bucket change and another change to what aws-b (no
    retention) still holds; returns the config, the engine and the first run's instant."""
    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    cfg = _config(tmp_path, database_url)
    _collect(engine, cfg, "aws-a", {"arn:aws:s3:::one": {"Name": "one", "v": 1},
                                    "arn:aws:s3:::two": {"Name": "shared", "v": "a"}})
    first = datetime.now(UTC)
    _collect(engine, cfg, "aws-b", {"arn:aws:s3:::three": {"Name": "shared", "v": "a"}})
    for _ in range(2):
        _collect(engine, cfg, "aws-a", {"arn:aws:s3:::one": {"Name": "one", "v": 2},
                                        "arn:aws:s3:::two": {"Name": "shared", "v": "b"}})
    yield cfg, engine, first
    engine.dispose()


def test_prune_drops_only_bodies_no_retained_version_needs(history, capsys):
    cfg, engine, first = history
    signer = load_or_create_signer(cfg.signing_key)
    url = cfg.database
    gone = _digest({"Name": "one", "v": 1})
    shared = _digest({"Name": "shared", "v": "a"})
    before = _bodies(url)
    assert before[gone] and before[shared]

    # Within the retention nothing is due; a dry run a week later drops nothing.
    assert prune(engine, cfg, signer).run is None
    later = datetime.now(UTC) + timedelta(days=8)
    dry = prune(engine, cfg, signer, at=later, dry_run=True)
    assert [(p.source, p.digests) for p in dry.sources] == [("aws-a", [gone])]
    assert _bodies(url) == before

    out = prune(engine, cfg, signer, at=later)
    assert out.run is not None and out.run.status == "complete" and out.dropped == 1
    after = _bodies(url)
    assert {d for d, present in after.items() if not present} == {gone}
    assert after[shared], "aws-b keeps its evidence for ever"
    assert set(after) - set(before) == {d for d, present in after.items()
                                        if d not in before}  # only the prune record is new
    # A second prune finds nothing more.
    assert prune(engine, cfg, signer, at=later).run is None

    config = cfg.path
    assert annexa(capsys, config, "verify")[0] == 0
    code, out_text, err = annexa(capsys, config, "snapshot", "--at", first.isoformat(),
                                 "--format", "json")
    assert code == 0, err
    assert gone in out_text, "the pruned period's snapshot still cites the digest"
    bundle = config.parent / "bundle.zip"
    code, _, err = annexa(capsys, config, "export", "--from", "2020-01-01", "--to",
                          (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
                          "--out", str(bundle))
    assert code == 0, err
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    entries = {e["digest"]: e for e in manifest["evidence"]}
    assert entries[gone].get("pruned") is True and entries[gone]["file"] is None
    assert not entries[shared].get("pruned")
    capsys.readouterr()
    assert main(["verify-bundle", str(bundle)]) == 0
    assert "pruned by retention" in capsys.readouterr().out


def test_verify_tells_a_sealed_pruning_from_a_deleted_body(history, capsys):
    cfg, engine, _ = history
    prune(engine, cfg, load_or_create_signer(cfg.signing_key),
          at=datetime.now(UTC) + timedelta(days=8))
    assert annexa(capsys, cfg.path, "verify")[0] == 0
    deleted = _digest({"Name": "shared", "v": "b"})
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE blobs SET body = NULL WHERE digest = :d"), {"d": deleted})
    code, out, _ = annexa(capsys, cfg.path, "verify")
    assert code == 1
    assert f"blob {deleted}: its body is missing and no sealed prune run lists it" in out


def test_the_prune_run_is_sealed_into_the_chain(history, capsys):
    cfg, engine, _ = history
    out = prune(engine, cfg, load_or_create_signer(cfg.signing_key),
                at=datetime.now(UTC) + timedelta(days=8))
    with engine.connect() as conn:
        [(source, seq)] = conn.execute(sa.text(
            "SELECT source, seq FROM runs WHERE id = :r"), {"r": out.run.run_id}).all()
    assert source == SOURCE and seq is not None


def test_annexa_prune_through_the_cli(tmp_path, database_url, moto_url, capsys):
    config = write_config(tmp_path, database_url, moto_url, retention="1s",
                          regions=["us-east-1"])
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    s3.create_bucket(Bucket="retained")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    s3.put_bucket_versioning(Bucket="retained", VersioningConfiguration={"Status": "Enabled"})
    assert annexa(capsys, config, "collect")[0] == 0
    time.sleep(1.1)  # the retention of 1 s must pass: there is no event to await
    code, out, err = annexa(capsys, config, "prune", "--dry-run")
    assert code == 0, err
    assert "dry run: nothing dropped" in out and "aws-test: retention 1s" in out
    code, out, err = annexa(capsys, config, "prune")
    assert code == 0, err
    assert "pruned 1 bodies" in out, out
    assert annexa(capsys, config, "verify")[0] == 0

    cfg = yaml.safe_load(config.read_text())
    cfg["sources"][0]["retention"] = "3 years"
    config.write_text(yaml.safe_dump(cfg))
    code, _, err = annexa(capsys, config, "prune")
    assert code == 2 and "sources[0].retention" in err, err
