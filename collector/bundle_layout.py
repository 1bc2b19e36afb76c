"""The names inside an evidence bundle (a zip), shared by the exporter and the verifier."""

from __future__ import annotations

FORMAT = "annexa-evidence-bundle/1"
MANIFEST = "manifest.json"
PUBLIC_KEY = "public_key.pem"
REPORT = "report.html"
EVIDENCE_DIR = "evidence/"


def evidence_path(digest: str) -> str:
    """One file per evidence digest: the canonical JSON whose SHA-256 is the digest."""
    return f"{EVIDENCE_DIR}{digest}.json"
