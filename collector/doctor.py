"""`annexa doctor`: a preflight of each source's access. Each connector's `probes` module
declares its permissions and the one call that exercises each; this runs them once with the
configured credentials, names the fix of each denial (the permission to add and the line of
the shipped least-privilege policy that grants it, looked up now so it follows the file), and
renders the report. Nothing is stored: no run, no evidence, no ledger record."""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from collector.config import SourceConfig
from collector.tables import Column, Terminal, render
from connectors import KINDS
from connectors.probing import (
    DENIED,
    GRANTED,
    UNREACHABLE,
    UNTESTED,
    Outcome,
    Plan,
    Probe,
    classify,
    outcome,
)

# The directory that holds config/<kind>/, the shipped policies.
ROOT = Path(__file__).resolve().parent.parent
PASSING = frozenset({GRANTED, UNTESTED})


@dataclass(frozen=True)
class Fix:
    add: str
    policy: str
    line: int | None

    def __str__(self) -> str:
        where = f"{self.policy}:{self.line}" if self.line else f"{self.policy} (not found in it)"
        return f"add {self.add} (granted by {where})"


@dataclass(frozen=True)
class Check:
    permission: str
    call: str
    status: str
    detail: str
    fix: Fix | None = None


@dataclass
class SourceReport:
    source: str
    kind: str
    # Credentials that could not be had or were refused, or no answer at all: nothing was
    # judged. (status "credentials" or "unreachable", detail)
    problem: dict[str, str] | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.problem is None and all(c.status in PASSING for c in self.checks)


def policy_line(policy: str, text: str, root: Path = ROOT) -> int | None:
    """The number of the first line of `policy` that names `text` whole (not as a part of a
    longer name), or None when the file does not."""
    pattern = re.compile(rf"(?<![\w.:/-]){re.escape(text)}(?![\w.:/-])")
    try:
        lines = (root / policy).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((number for number, line in enumerate(lines, 1) if pattern.search(line)), None)


def _once(settings: BaseModel) -> BaseModel:
    """The source's settings with one attempt per call: a preflight reports what happened to
    each call, it does not wait out retries."""
    if "max_attempts" in type(settings).model_fields:
        return settings.model_copy(update={"max_attempts": 1})
    return settings


def _problem(result: Outcome, what: str) -> dict[str, str]:
    """The source's one problem: no answer (the cause), else credentials (`what` failed)."""
    if result.status == UNREACHABLE:
        return {"status": UNREACHABLE, "detail": result.detail}
    return {"status": "credentials", "detail": f"{what}: {result.detail}" if what
            else result.detail}


def examine(source: SourceConfig) -> SourceReport:
    """Run the source's probes, each call once."""
    report = SourceReport(source.name, source.kind)
    probes = importlib.import_module(f"{KINDS[source.kind]}.probes")
    settings = _once(source.settings())  # validated when the configuration was loaded
    try:
        plan: Plan = probes.plan(settings)
    except Exception as exc:  # no credentials, or none that can be used: named, classified
        found = classify(exc)
        report.problem = _problem(found if found.status == UNREACHABLE
                                  else Outcome(found.status, str(exc) or type(exc).__name__), "")
        return report
    if plan.login is not None:
        result = outcome(plan.login)
        if result.status != GRANTED:
            report.problem = _problem(result, plan.login_call)
            return report
    for probe in plan.probes:
        result = outcome(probe.run, probe.authorised)
        if result.rejected or result.status == UNREACHABLE:
            # Credentials refused whatever the permission, or an endpoint that does not
            # answer: every other call would say the same.
            report.problem = _problem(result, "the credentials were refused")
            report.checks.clear()
            return report
        report.checks.append(_check(probe, result))
    return report


def _check(probe: Probe, result: Outcome) -> Check:
    fix = None
    if result.status == DENIED:
        fix = Fix(probe.permission, probe.policy, policy_line(probe.policy, probe.policy_text))
    return Check(probe.permission, probe.call, result.status, result.detail, fix)


def as_json(reports: list[SourceReport]) -> list[dict[str, Any]]:
    return [{"source": r.source, "kind": r.kind, "passed": r.passed, "problem": r.problem,
             "permissions": [{**asdict(c), "fix": asdict(c.fix) if c.fix else None}
                             for c in r.checks]} for r in reports]


RESULT_STYLES = {"granted": "green", "denied": "bold red", "unreachable": "red",
                 "error": "red", "untested": "yellow"}
COLUMNS = (Column("source"), Column("permission", fit="middle"),
           Column("result", styles=RESULT_STYLES), Column("detail", fit="wrap"))


def table_rows(reports: list[SourceReport]) -> list[list[str]]:
    rows: list[list[str]] = []
    for report in reports:
        if report.problem is not None:
            rows.append([report.source, "(source)", report.problem["status"],
                         report.problem["detail"]])
        for check in report.checks:
            detail = str(check.fix) if check.fix else check.detail
            if check.fix and check.detail:
                detail = f"{detail}: {check.detail}"
            rows.append([report.source, check.permission, check.status, detail or check.call])
    return rows


def as_table(reports: list[SourceReport]) -> str:
    """The table as plain text, whole (as in a pipe)."""
    return render(COLUMNS, table_rows(reports), Terminal(None, False))
