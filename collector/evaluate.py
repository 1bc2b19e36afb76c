"""Applies the registered checks to a stream of collected items.

Resource checks run as each resource arrives. Scope checks need whole kinds, so only the kinds
that some scope check uses are buffered, per scope, until the stream ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from checks.registry import Check, ScopeView, resource_checks, scope_checks
from collector.model import (
    ALL_REGIONS,
    CollectionError,
    Resource,
    Scope,
    Verdict,
    errored,
    not_applicable,
)


@dataclass(slots=True)
class Outcome:
    """One check's verdict on one subject (a resource key, or a scope's key). Not frozen: a
    frozen dataclass costs five times as much to make, and a run makes millions."""

    check: Check
    subject: str
    kind: str
    region: str
    verdict: Verdict
    evidence: tuple[str, ...]  # keys of the resources the verdict rests on
    per_resource: bool = False  # the subject is the resource that was judged


def error_subject(scope_key: str, region: str) -> str:
    """The subject of an `error` result that stands for resources that could not be listed."""
    return f"{scope_key}#{region}"


class Evaluator:
    def __init__(self) -> None:
        self._scopes: dict[str, Scope] = {}
        self._buffered: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._errors: list[CollectionError] = []
        self._kind_checks: dict[str, list[Check]] = {}
        self._used_kinds: dict[str, set[str]] = {}
        self._seen: set[tuple[str, str]] = set()  # (scope id, kind) of the resources judged

    def _checks_for(self, kind: str) -> list[Check]:
        if kind not in self._kind_checks:
            self._kind_checks[kind] = resource_checks(kind)
        return self._kind_checks[kind]

    def _used(self, provider: str) -> set[str]:
        if provider not in self._used_kinds:
            self._used_kinds[provider] = {k for c in scope_checks(provider) for k in c.uses}
        return self._used_kinds[provider]

    def buffers(self, kind: str) -> bool:
        """Whether resources of `kind` are kept until the end for some scope check."""
        return any(kind in self._used(s.provider) for s in self._scopes.values())

    def scope(self, scope: Scope) -> None:
        self._scopes[scope.id] = scope

    def resource(self, res: Resource) -> Iterator[Outcome]:
        self._seen.add((res.scope, res.kind))
        for chk in self._checks_for(res.kind):
            yield Outcome(chk, res.key, res.kind, res.region, chk.evaluate(res.data), (res.key,),
                          per_resource=True)
        scope = self._scopes.get(res.scope)
        if scope is not None and res.kind in self._used(scope.provider):
            self._buffered[res.scope][res.kind].append((res.key, res.data))

    def error(self, err: CollectionError) -> Iterator[Outcome]:
        """Checks on the kinds that could not be listed report `error` for that region."""
        self._errors.append(err)
        scope = self._scopes.get(err.scope)
        scope_key = scope.key if scope else err.scope
        if err.key is not None:
            for kind in err.kinds:
                for chk in self._checks_for(kind):
                    yield Outcome(chk, err.key, kind, err.region, errored(err.message), ())
            return
        reason = f"{err.service} could not be collected in {err.region}: {err.message}"
        for kind in err.kinds:
            for chk in self._checks_for(kind):
                subject = error_subject(scope_key, err.region)
                yield Outcome(chk, subject, kind, err.region, errored(reason), ())

    def finish(self) -> Iterator[Outcome]:
        """Run the scope checks of every scope seen."""
        for scope in self._scopes.values():
            failed = [e for e in self._errors if e.scope == scope.id]
            kinds = self._buffered.get(scope.id, {})
            for chk in scope_checks(scope.provider):
                evidence = tuple(key for kind in chk.uses for key, _ in kinds.get(kind, ()))
                broken = [e for e in failed if set(e.kinds) & set(chk.uses)]
                if broken:
                    e = broken[0]
                    verdict = errored(f"{e.service} could not be collected in {e.region}: "
                                      f"{e.message}")
                else:
                    view = ScopeView(scope.id, {k: [d for _, d in v] for k, v in kinds.items()})
                    verdict = chk.evaluate(view)
                yield Outcome(chk, scope.key, chk.resource_kind, "global", verdict, evidence)
            yield from self._absent(scope, failed)

    def _absent(self, scope: Scope, failed: list[CollectionError]) -> Iterator[Outcome]:
        """The kinds the scope lists in full and that have no resource there: their resource
        checks do not apply. A kind that could not be listed (or a resource of it stored) is
        left to its errors."""
        unread = {kind for e in failed for kind in e.kinds}
        for kind in scope.kinds:
            if (scope.id, kind) in self._seen or kind in unread:
                continue
            verdict = not_applicable(f"no {kind} in {scope.id}")
            for chk in self._checks_for(kind):
                yield Outcome(chk, error_subject(scope.key, ALL_REGIONS), kind, ALL_REGIONS,
                              verdict, ())


def evaluate_all(items: Iterable[Resource | CollectionError | Scope]) -> list[Outcome]:
    """Evaluate a whole stream at once (for tests and small tools)."""
    ev = Evaluator()
    out: list[Outcome] = []
    for item in items:
        if isinstance(item, Scope):
            ev.scope(item)
        elif isinstance(item, Resource):
            out.extend(ev.resource(item))
        else:
            out.extend(ev.error(item))
    out.extend(ev.finish())
    return out
