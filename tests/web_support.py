"""Support for tests/test_web.py: a seeded service on loopback (two sealed runs of a synthetic
AWS source, one bucket losing its encryption between them, one bucket with a hostile name) and
one headless Chromium driven by Selenium (Debian's chromium and chromium-driver)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.synthetic import SCOPE
from checks.registry import load_all
from collector import migrate, tokens
from collector.api import ApiServer, create_app
from collector.config import SourceConfig
from collector.db import engine_for
from collector.ledger import Signer, load_or_create_signer
from collector.model import Resource
from collector.pipeline import collect_source

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>\x1b[31m\u202eevil'
OUTPUT = Path(__file__).parent / "output"  # screenshots; gitignored


def bucket(name: str, encrypted: bool = True, **extra: Any) -> Resource:
    """A bucket that passes every S3 check, unless it is not `encrypted`."""
    tls_only = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{name}/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    return SCOPE.resource("aws.s3.bucket", f"arn:aws:s3:::{name}", {
        "Name": name, "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms"}}]} if encrypted else None,
        "logging": {"TargetBucket": "logs", "TargetPrefix": "x/"},
        "policy": {"Statement": [tls_only]}, "account_public_access_block": None,
        "public_access_block": dict.fromkeys(("BlockPublicAcls", "BlockPublicPolicy",
                                              "IgnorePublicAcls", "RestrictPublicBuckets"), True),
        "versioning": {"Status": "Enabled"}, **extra}, "us-east-1")


@dataclass
class Seeded:
    engine: sa.Engine
    signer: Signer
    url: str
    first_finished: datetime  # run 1: bucket "logs" encrypted
    second_finished: datetime  # run 2: it is not
    public_pem: str

    def token(self, **window: datetime) -> str:
        made, _ = tokens.create(self.engine, role="auditor", name="web-test", **window)
        return made


def _finished(engine: sa.Engine, run_id: int) -> datetime:
    with engine.connect() as conn:
        value = conn.scalar(sa.text("SELECT finished_at FROM runs WHERE id = :r"), {"r": run_id})
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def seeded_service(folder: Path) -> Iterator[Seeded]:
    url = f"sqlite:///{folder / 'web.db'}"
    migrate.upgrade(engine_for(url, check_schema=False))
    load_all()
    engine = engine_for(url)
    signer = load_or_create_signer(folder / "signing.key")
    source = SourceConfig(name="aws-prod", kind="aws")
    hostile = bucket(HOSTILE, versioning={"Status": "Suspended"},  # fails A.5.33
                     Tags=[{"Key": HOSTILE, "Value": HOSTILE}])
    first = collect_source(engine, source, signer, writer="inline",
                           items=[SCOPE, bucket("logs"), hostile])
    second = collect_source(engine, source, signer, writer="inline",
                            items=[SCOPE, bucket("logs", encrypted=False), hostile])
    server = ApiServer(create_app(engine, timedelta(days=1), signer.public_hex, signer),
                       "127.0.0.1", 0)
    server.start()
    from cryptography.hazmat.primitives import serialization

    pem = signer.public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    try:
        yield Seeded(engine, signer, server.url, _finished(engine, first.run_id),
                     _finished(engine, second.run_id), pem)
    finally:
        server.stop()
        engine.dispose()


@contextmanager
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs "
                    "them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def axe_source(folder: Path) -> str:
    """axe-core's axe.min.js from the npm registry (`npm pack`), fetched once into the gitignored
    output folder: third-party minified code is not committed."""
    script = folder / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: axe-core cannot be fetched")
        folder.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run([npm, "pack", "axe-core@4", "--silent", "--pack-destination",
                                 str(folder)], capture_output=True, text=True, timeout=300,
                                check=True).stdout.strip().splitlines()[-1]
        with tarfile.open(folder / packed) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            script.write_bytes(member.read())
    return script.read_text()
