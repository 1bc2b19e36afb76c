"""IAM: the account's root and password settings, and every user, group, role and
customer-managed policy with what is attached to it.

Two bulk sources cover everything: get_account_authorization_details (users, groups, roles and
local policies with their documents, up to 1,000 per call) and the credential report (one CSV
row per user: console password, MFA and access-key dates). No per-user calls are made.
Policies and groups are read before users and roles, so that every attached customer-managed
policy carries its default version's document, and every user the policies of its groups:
each principal's evidence shows every path to full admin.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from collector.model import FETCH_ERRORS, Resource, Scope
from connectors.aws.fetch import describe, detail, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

KINDS = ("aws.iam.account", "aws.iam.password_policy", "aws.iam.user", "aws.iam.group",
         "aws.iam.role", "aws.iam.policy")

# AWS usually builds the report in seconds; these polls give up after about 75 seconds.
REPORT_POLLS = 15
REPORT_POLL_MAX_SECONDS = 8.0

ROOT_ROW = "<root_account>"
GROUP_POLICY_FIELDS = ("GroupName", "Arn", "AttachedManagedPolicies", "GroupPolicyList")

# Values the credential report writes where there is no date (never used, no key, unknown).
_NO_VALUE = frozenset({"N/A", "not_supported", "no_information", ""})


class ReportNotReady(RuntimeError):
    pass


def _report_credentials(iam: Any) -> dict[str, dict[str, Any]]:
    """Each credential report row as _credentials, by user name; the root's is under ROOT_ROW.
    Rows are converted as they are read: kept whole (about 2 KB each) for the whole IAM read,
    they were most of its memory."""
    delay = 0.1
    for _ in range(REPORT_POLLS):
        if iam.generate_credential_report()["State"] == "COMPLETE":
            break
        time.sleep(delay)
        delay = min(delay * 2, REPORT_POLL_MAX_SECONDS)
    else:
        raise ReportNotReady(f"credential report not ready after {REPORT_POLLS} polls")
    content = iam.get_credential_report()["Content"].decode("utf-8")
    return {row["user"]: _credentials(row) for row in csv.DictReader(io.StringIO(content))}


def _value(row: dict[str, str], column: str) -> str | None:
    value = row.get(column, "N/A")
    return None if value in _NO_VALUE else value


def _credentials(row: dict[str, str]) -> dict[str, Any]:
    """One report row as typed fields. Dates stay ISO-8601; None means never or not present."""
    keys = []
    for slot in (1, 2):
        prefix = f"access_key_{slot}_"
        last_rotated = _value(row, prefix + "last_rotated")
        if last_rotated is None:  # no key in this slot
            continue
        keys.append({
            "slot": slot,
            "active": row.get(prefix + "active") == "true",
            "last_rotated": last_rotated,
            "last_used_date": _value(row, prefix + "last_used_date"),
            "last_used_region": _value(row, prefix + "last_used_region"),
            "last_used_service": _value(row, prefix + "last_used_service"),
        })
    return {
        "user_creation_time": _value(row, "user_creation_time"),
        "password_enabled": row.get("password_enabled") == "true",
        "password_last_used": _value(row, "password_last_used"),
        "password_last_changed": _value(row, "password_last_changed"),
        "mfa_active": row.get("mfa_active") == "true",
        "access_keys": keys,
    }


def _policy(entry: dict[str, Any]) -> dict[str, Any]:
    """A local policy with only its default version: the others grant nothing."""
    data = {k: v for k, v in entry.items() if k != "PolicyVersionList"}
    versions = entry.get("PolicyVersionList", [])
    data["DefaultVersion"] = next((v for v in versions if v.get("IsDefaultVersion")), None)
    return data


def _role(entry: dict[str, Any]) -> dict[str, Any]:
    """Instance profiles are reduced to their ARNs: they repeat the whole role otherwise."""
    data = {k: v for k, v in entry.items() if k != "InstanceProfileList"}
    data["InstanceProfileArns"] = [p["Arn"] for p in entry.get("InstanceProfileList", [])]
    return data


def _details(iam: Any, *kinds: str) -> Iterator[dict[str, Any]]:
    return iam.get_paginator("get_account_authorization_details").paginate(
        Filter=list(kinds), PaginationConfig={"PageSize": 1000})


def _attach_documents(principal: dict[str, Any], documents: dict[str, Any]) -> None:
    """Give each attached customer-managed policy its default version's document. AWS-managed
    policies are not listed here and stay as named; a policy missing from the listing (made
    while it was read) stays without one, which checks report as an error."""
    for attached in principal.get("AttachedManagedPolicies", []):
        document = documents.get(attached.get("PolicyArn"))
        if document is not None:
            attached["Document"] = document


def _join_groups(user: dict[str, Any], groups: dict[str, dict[str, Any]]) -> None:
    """Copy onto the user the policies of its groups, so that its evidence shows every path to
    its rights."""
    user["Groups"] = [groups[name] for name in user.get("GroupList", []) if name in groups]
    unlisted = [name for name in user.get("GroupList", []) if name not in groups]
    if unlisted:
        user.setdefault(FETCH_ERRORS, {})["Groups"] = (
            f"group(s) {', '.join(unlisted)} not in the account's group listing")


@service("iam", kinds=KINDS, regional=False)
def iam_resources(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    iam = session.client("iam", region)
    partition = scope.key.split(":")[1]

    try:
        credentials, report_error = _report_credentials(iam), None
    except (ClientError, BotoCoreError, ReportNotReady) as exc:
        credentials, report_error = {}, describe(exc)

    account: dict[str, Any] = {}
    detail(account, "summary", iam.get_account_summary, pick=lambda r: r["SummaryMap"])
    if report_error:
        account.setdefault(FETCH_ERRORS, {})["root_credential_report"] = report_error
    else:
        account["root_credential_report"] = credentials.get(ROOT_ROW)
    yield scope.resource("aws.iam.account", scope.key, account)

    password_policy: dict[str, Any] = {}
    detail(password_policy, "policy", iam.get_account_password_policy,
           absent=("NoSuchEntity",), pick=lambda r: r["PasswordPolicy"])
    yield scope.resource("aws.iam.password_policy",
                         f"arn:{partition}:iam::{scope.id}:password-policy", password_policy)

    # Policies and groups first, so that users and roles can carry the documents that
    # judge them: two listings of the account, however many principals it has.
    documents: dict[str, Any] = {}
    groups: list[dict[str, Any]] = []
    for page in _details(iam, "LocalManagedPolicy", "Group"):
        for entry in page.get("Policies", []):
            policy = jsonable(_policy(entry))
            documents[policy["Arn"]] = (policy.get("DefaultVersion") or {}).get("Document")
            yield scope.resource("aws.iam.policy", policy["Arn"], policy)
        groups += [jsonable(entry) for entry in page.get("GroupDetailList", [])]
    joined: dict[str, dict[str, Any]] = {}
    for group in groups:
        _attach_documents(group, documents)
        joined[group["GroupName"]] = {k: group[k] for k in GROUP_POLICY_FIELDS if k in group}
        yield scope.resource("aws.iam.group", group["Arn"], group)

    for page in _details(iam, "User", "Role"):
        for entry in page.get("UserDetailList", []):
            user = jsonable(entry)
            _attach_documents(user, documents)
            _join_groups(user, joined)
            report = credentials.get(user["UserName"])
            if report is not None:
                user["credential_report"] = report
            else:
                user.setdefault(FETCH_ERRORS, {})["credential_report"] = report_error or (
                    "user not in the credential report yet (AWS rebuilds it at most every "
                    "4 hours)")
            yield scope.resource("aws.iam.user", user["Arn"], user)
        for entry in page.get("RoleDetailList", []):
            role = jsonable(_role(entry))
            _attach_documents(role, documents)
            yield scope.resource("aws.iam.role", role["Arn"], role)
