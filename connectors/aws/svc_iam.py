"""IAM: the account's root and password settings, and every user, group, role and
customer-managed policy with what is attached to it.

Two bulk sources cover everything: get_account_authorization_details (users, groups, roles and
local policies with their documents, up to 1,000 per call) and the credential report (one CSV
row per user: console password, MFA and access-key dates). No per-user calls are made.
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

    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Group", "Role", "LocalManagedPolicy"],
        PaginationConfig={"PageSize": 1000},
    )
    for page in pages:
        for entry in page.get("UserDetailList", []):
            user = jsonable(entry)
            report = credentials.get(user["UserName"])
            if report is not None:
                user["credential_report"] = report
            else:
                user[FETCH_ERRORS] = {"credential_report": report_error or (
                    "user not in the credential report yet (AWS rebuilds it at most every "
                    "4 hours)")}
            yield scope.resource("aws.iam.user", user["Arn"], user)
        for entry in page.get("GroupDetailList", []):
            yield scope.resource("aws.iam.group", entry["Arn"], jsonable(entry))
        for entry in page.get("RoleDetailList", []):
            yield scope.resource("aws.iam.role", entry["Arn"], jsonable(_role(entry)))
        for entry in page.get("Policies", []):
            yield scope.resource("aws.iam.policy", entry["Arn"], jsonable(_policy(entry)))
