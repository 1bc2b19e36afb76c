"""Azure role assignments: a binding to an Entra object is an account of that principal in the
subscription, usable for as long as the binding exists. Owner and User Access Administrator are
privilege: both can grant any access, their own included. Group bindings name no one person and
are left out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.people.identities import Identity, adapter, identifiers

# Built-in role definition ids (the same in every tenant).
PRIVILEGED_ROLES = {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Azure Owner",
                    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "Azure User Access Administrator"}


@adapter("azure.authorization.role_assignment")
def role_assignment(key: str, assignment: dict[str, Any]) -> Iterator[Identity]:
    props = assignment.get("properties") or {}
    principal, kind = props.get("principalId"), props.get("principalType")
    if not isinstance(principal, str) or kind == "Group":
        return
    role = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    privileges = (PRIVILEGED_ROLES[role],) if role in PRIVILEGED_ROLES else ()
    yield Identity(
        kind="azure.authorization.role_assignment", key=key,
        label=f"{principal} at {props.get('scope', '?')}",
        identifiers=identifiers(entra=principal), active=True,
        why_active=f"role assignment at {props.get('scope', '?')}",
        privileged=bool(privileges), privileges=privileges,
        human=kind == "User" if kind else None)
