"""The GitHub App permissions shipped in config/github/ are what the connector needs: granted
those, the demo organisation is collected and judged without an error; without any one of
them, the checks the file says it serves cannot be judged (and never pass)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.registry import load_all
from collector.demo.emulators import github
from collector.evaluate import evaluate_all
from connectors.github import SourceUnreachable
from tests.github_support import GitHubFake, github_fake, github_server

__all__ = ["github_fake", "github_server"]

PERMISSIONS = json.loads((Path(__file__).parent.parent / "config" / "github" /
                          "app-permissions.json").read_text())
NAMES = [p["name"] for p in PERMISSIONS["permissions"]]


def _errors(fake: GitHubFake, monkeypatch: pytest.MonkeyPatch,
            granted: set[str]) -> dict[str, set[str]]:
    """check id -> statuses, for the checks that could not judge everything (a listing
    refused as a whole makes its kind's checks `error` too)."""
    monkeypatch.setenv("GITHUB_TOKEN", github.personal_token(fake.tokens, fake.org, granted))
    items = fake.collect()
    load_all()
    statuses: dict[str, set[str]] = {}
    for outcome in evaluate_all(items):
        statuses.setdefault(outcome.check.id, set()).add(outcome.verdict.status)
    return {c: s for c, s in statuses.items() if "error" in s and c.startswith("github.")}


def test_the_shipped_permissions_are_the_emulator_s_and_each_says_why() -> None:
    assert sorted(NAMES) == sorted(github.GRANTED)
    assert PERMISSIONS["default_permissions"] == {name: "read" for name in NAMES}
    for permission in PERMISSIONS["permissions"]:
        assert permission["calls"] and permission["checks"] and permission["why"]


def test_granted_exactly_those_nothing_is_an_error(github_fake: GitHubFake,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert _errors(github_fake, monkeypatch, set(NAMES)) == {}


@pytest.mark.parametrize("dropped", [n for n in NAMES if n != "metadata"])
def test_each_permission_is_needed_by_the_checks_it_names(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch, dropped: str) -> None:
    named = next(p["checks"] for p in PERMISSIONS["permissions"] if p["name"] == dropped)
    errors = _errors(github_fake, monkeypatch, set(NAMES) - {dropped})
    assert set(named) <= set(errors), sorted(set(named) - set(errors))


def test_without_metadata_the_organisation_is_not_found(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SourceUnreachable, match="HTTP 404"):
        _errors(github_fake, monkeypatch, set(NAMES) - {"metadata"})
