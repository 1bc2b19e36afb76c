"""The check registry: each check declares what it verifies, for which controls and why.

Two shapes exist. A resource check judges one resource's data. A scope check judges a whole
scope (an AWS account, say) from the resources of the kinds it `uses`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checks.catalogue import controls as catalogue
from collector.model import FETCH_ERRORS, Verdict, errored

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True, slots=True)
class ScopeView:
    """What a scope check sees: the scope's id and the data of the resources it uses."""

    scope: str
    resources: Mapping[str, list[dict[str, Any]]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return list(self.resources.get(kind, ()))


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    resource_kind: str
    controls: Mapping[str, str]
    severity: str
    remediation: str
    func: Callable[[Any], Verdict]
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = field(default=())

    @property
    def is_scope_check(self) -> bool:
        return bool(self.uses)

    @property
    def provider(self) -> str:
        return self.resource_kind.split(".", 1)[0]

    def evaluate(self, subject: Any) -> Verdict:
        """Judge one resource's data (or a ScopeView). Never raises; never passes on doubt."""
        if self.needs and isinstance(subject, Mapping):
            missing = subject.get(FETCH_ERRORS) or {}
            for name in self.needs:
                if name in missing:
                    return errored(f"{name} could not be collected: {missing[name]}")
        try:
            verdict = self.func(subject)
        except Exception as exc:  # a check bug must surface as `error`, never as `pass`
            return errored(f"check raised {type(exc).__name__}: {exc}")
        if not isinstance(verdict, Verdict):
            return errored(f"check returned {type(verdict).__name__}, not a Verdict")
        return verdict


REGISTRY: dict[str, Check] = {}


def _register(item: Check) -> None:
    if item.id in REGISTRY:
        raise ValueError(f"check {item.id} is registered twice")
    if item.severity not in SEVERITIES:
        raise ValueError(f"check {item.id}: severity {item.severity!r} not in {SEVERITIES}")
    if not item.controls:
        raise ValueError(f"check {item.id} maps to no control")
    known = catalogue()
    for control_id, why in item.controls.items():
        if control_id not in known:
            raise ValueError(f"check {item.id}: {control_id} is not an Annex A 2022 control")
        if not why.strip():
            raise ValueError(f"check {item.id}: mapping to {control_id} gives no reason")
    REGISTRY[item.id] = item


def check(
    check_id: str,
    *,
    resource: str,
    title: str,
    controls: Mapping[str, str],
    severity: str,
    remediation: str,
    needs: Iterable[str] = (),
) -> Callable[[Callable[[dict[str, Any]], Verdict]], Callable[[dict[str, Any]], Verdict]]:
    """Register a resource check. `needs` names data fields whose fetch failure means `error`."""

    def register(func: Callable[[dict[str, Any]], Verdict]) -> Callable[[dict[str, Any]], Verdict]:
        _register(
            Check(check_id, title, resource, dict(controls), severity, remediation, func,
                  needs=tuple(needs))
        )
        return func

    return register


def scope_check(
    check_id: str,
    *,
    scope: str,
    uses: Iterable[str],
    title: str,
    controls: Mapping[str, str],
    severity: str,
    remediation: str,
) -> Callable[[Callable[[ScopeView], Verdict]], Callable[[ScopeView], Verdict]]:
    """Register a check over a whole scope (`scope` names it, e.g. "aws.account")."""
    used = tuple(uses)
    if not used:
        raise ValueError(f"scope check {check_id} uses no resource kind")

    def register(func: Callable[[ScopeView], Verdict]) -> Callable[[ScopeView], Verdict]:
        _register(Check(check_id, title, scope, dict(controls), severity, remediation, func,
                        uses=used))
        return func

    return register


def load_all() -> dict[str, Check]:
    """Import every check module under `checks/` so that their decorators run."""
    import importlib
    import pkgutil

    import checks

    for info in pkgutil.walk_packages(checks.__path__, prefix="checks."):
        importlib.import_module(info.name)
    return REGISTRY


def resource_checks(kind: str) -> list[Check]:
    return [c for c in REGISTRY.values() if not c.is_scope_check and c.resource_kind == kind]


def scope_checks(provider: str) -> list[Check]:
    return [c for c in REGISTRY.values() if c.is_scope_check and c.provider == provider]
