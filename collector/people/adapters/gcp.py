"""GCP IAM bindings to Google accounts (`user:` members): each member of a resource's IAM
policy is an account of that person there, usable for as long as the binding exists. A
project's Owner and Project IAM Admin are privilege: both can grant any access in the project,
their own included. Groups, domains and service accounts name no one person; a `deleted:`
member can no longer sign in. Google accounts have no MFA of GCP's own: 2-Step Verification is
the identity provider's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.people.identities import Identity, adapter, email, identifiers

PRIVILEGED_ROLES = {"roles/owner": "GCP Owner",
                    "roles/resourcemanager.projectIamAdmin": "GCP Project IAM Admin"}
# The kinds whose IAM policy the connector joins to them (connectors/gcp/kinds.py).
BOUND_KINDS = ("gcp.project", "gcp.storage.bucket", "gcp.kms.crypto_key")


def member_key(resource_key: str, member: str) -> str:
    """`gcp:binding:<resource>/user:<email>`: one account per resource and member, whatever
    roles it holds there."""
    return f"gcp:binding:{resource_key.removeprefix('//')}/{member}"


def bindings(key: str, data: dict[str, Any]) -> Iterator[Identity]:
    policy = data.get("iamPolicy") or {}
    roles: dict[str, list[str]] = {}
    for binding in policy.get("bindings") or []:
        for member in binding.get("members") or []:
            if isinstance(member, str) and member.startswith("user:"):
                roles.setdefault(member, []).append(str(binding.get("role", "?")))
    project = key.startswith("//cloudresourcemanager.googleapis.com/projects/")
    for member, held in sorted(roles.items()):
        address = email(member.removeprefix("user:"))
        privileges = tuple(sorted({PRIVILEGED_ROLES[r] for r in held
                                   if project and r in PRIVILEGED_ROLES}))
        yield Identity(
            kind="gcp.iam.binding", key=member_key(key, member),
            label=f"{member} on {key.removeprefix('//')}",
            identifiers=identifiers(emails=[address] if address else []), active=True,
            why_active="holds " + ", ".join(sorted(held)),
            privileged=bool(privileges), privileges=privileges)


for _kind in BOUND_KINDS:
    adapter(_kind)(bindings)
