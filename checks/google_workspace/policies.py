"""The Cloud Identity Policy API's settings as they reach each org unit.

The API returns a policy only where an admin (or Google, for SYSTEM policies) set a value: on
an org unit, which its sub-units inherit, or for the members of a group. What applies to an org
unit is reduced from the policies on it and on its ancestors: the Max reducer takes the value
of the policy with the greatest sortOrder, the Merge reducer takes each field from the policy
with the greatest sortOrder that sets it
(https://cloud.google.com/identity/docs/concepts/policy-api-concepts). A group's policy
overrides the org units of its members, so each is judged on its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checks.registry import ScopeView
from collector.model import FETCH_ERRORS, Verdict, errored, failed, passed

ORG_UNIT = "google_workspace.org_unit"
POLICY = "google_workspace.policy"
USER_COUNT = "userCount"

# What is wrong with a reduced value (None: nothing); a value of None means that no policy and
# no documented default applies.
Judge = Callable[[dict[str, Any] | None], str | None]


@dataclass(frozen=True)
class InForce:
    """A setting's value at one org unit, or for one group's members."""

    where: str
    value: dict[str, Any] | None
    users: int | None  # users directly in the org unit; None when they could not be counted


def _unit_id(value: Any) -> str:
    return str(value or "").removeprefix("id:").removeprefix("orgUnits/")


def _reduce(policies: list[dict[str, Any]], merge: bool,
            default: dict[str, Any] | None) -> dict[str, Any] | None:
    ranked = sorted(policies, key=lambda p: float(p["policyQuery"].get("sortOrder") or 0),
                    reverse=True)
    values = [p["setting"]["value"] for p in ranked]
    if default is not None:
        values.append(default)
    if not values:
        return None
    if not merge:
        return values[0]
    reduced: dict[str, Any] = {}
    for value in reversed(values):
        reduced.update(value)
    return reduced


def in_force(view: ScopeView, setting: str, *, merge: bool = False,
             default: dict[str, Any] | None = None) -> list[InForce] | str:
    """The value of `setting` (a type such as `security.password`) at every org unit and for
    every group that a policy names; or why it cannot be told."""
    units = view.of(ORG_UNIT)
    if not any(u.get("orgUnitPath") == "/" for u in units):
        return "the root org unit is missing from the org unit listing"
    by_id = {_unit_id(u.get("orgUnitId")): u for u in units}
    on_unit: dict[str, list[dict[str, Any]]] = {}
    for_group: dict[str, list[dict[str, Any]]] = {}
    for policy in view.of(POLICY):
        kind = (policy.get("setting") or {}).get("type")
        if kind != f"settings/{setting}":
            continue
        query = policy.get("policyQuery")
        if not isinstance(query, dict) or not isinstance(policy["setting"].get("value"), dict):
            return f"policy {policy.get('name')} has no policyQuery or setting value"
        if query.get("group"):
            for_group.setdefault(str(query["group"]), []).append(policy)
        else:
            on_unit.setdefault(_unit_id(query.get("orgUnit")), []).append(policy)
    found = []
    for unit in units:
        chain, seen = [], set()
        node: dict[str, Any] | None = unit
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            chain.extend(on_unit.get(_unit_id(node.get("orgUnitId")), []))
            node = by_id.get(_unit_id(node.get("parentOrgUnitId")))
        count = unit.get(USER_COUNT)
        known = USER_COUNT not in (unit.get(FETCH_ERRORS) or {}) and isinstance(count, int)
        found.append(InForce(str(unit.get("orgUnitPath")), _reduce(chain, merge, default),
                             count if known else None))
    for group, policies in sorted(for_group.items()):
        found.append(InForce(f"group {group}", _reduce(policies, merge, None), None))
    return found


def judge_setting(view: ScopeView, setting: str, judge: Judge, *, merge: bool = False,
                  default: dict[str, Any] | None = None, name: str) -> Verdict:
    """Pass when every org unit that has users, and every group a policy names, has a value
    that `judge` finds nothing wrong with; `name` names the setting in the reasons."""
    found = in_force(view, setting, merge=merge, default=default)
    if isinstance(found, str):
        return errored(found)
    gaps, unknown, units, groups = [], [], 0, 0
    for item in found:
        is_group = item.where.startswith("group ")
        if item.users == 0 and not is_group:
            continue
        groups, units = groups + is_group, units + (not is_group)
        if item.value is None:
            unknown.append(f"{item.where} (no {setting} policy applies)")
            continue
        problem = judge(item.value)
        if problem is None:
            continue
        if item.users is None and not is_group:
            unknown.append(f"{item.where} ({problem}; its users could not be counted)")
        else:
            gaps.append(f"{item.where} ({problem})")
    if gaps:
        return failed(f"{name}: {_listed(gaps)}")
    if unknown:
        return errored(f"{name} cannot be judged for {_listed(unknown)}")
    also = f" and {groups} group{'s' * (groups != 1)} with a policy of their own" if groups else ""
    return passed(f"{name} is as required for the {units} org unit{'s' * (units != 1)} with "
                  f"users{also}")


def _listed(items: list[str], most: int = 10) -> str:
    more = f"; and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more
