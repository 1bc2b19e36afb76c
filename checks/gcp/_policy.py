"""Reading IAM policies: who holds which role."""

from __future__ import annotations

from typing import Any

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


def bindings(data: dict[str, Any], *, required: bool) -> list[tuple[str, str]]:
    """(role, member) of the resource's IAM policy. Cloud Asset lists a policy only where one
    is set: without one, a resource that always has a policy (`required`) cannot be judged."""
    policy = data["iamPolicy"]
    if policy is None:
        if required:
            raise ValueError("no IAM policy was listed for it")
        return []
    return [(str(b["role"]), str(member)) for b in policy.get("bindings") or []
            for member in b.get("members") or []]


def public_grants(data: dict[str, Any], *, required: bool) -> list[str]:
    return sorted(f"{member} holds {role}" for role, member in bindings(data, required=required)
                  if member in PUBLIC_MEMBERS)
