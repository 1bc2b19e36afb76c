"""IAM Identity Center: every user of each instance's identity store, with the permission sets
it is assigned in each AWS account (directly or through a group), and the permission sets
themselves with their policies.

An instance lives in one region (ListInstances elsewhere lists none), so the service is read in
every region collected. Assignments are listed per permission set and account
(ListAccountsForProvisionedPermissionSet, then ListAccountAssignments): their number of calls
grows with permission sets and accounts, not with users. Only the groups that hold an
assignment have their members listed.

Whatever a user holds rests on every listing and every permission set's policies, so any of
those calls failing fails the service in that region (a CollectionError for its kinds): a user
shown without an assignment that could not be read would pass as one who has none."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from collector.model import Resource, Scope
from connectors.aws.fetch import error_code, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

USER = "aws.identity_center.user"
PERMISSION_SET = "aws.identity_center.permission_set"
KINDS = (USER, PERMISSION_SET)
PAGE = {"PageSize": 100}  # the largest page every one of these listings accepts

# (PrincipalType, PrincipalId) -> [(AccountId, PermissionSetArn)]
Assigned = dict[tuple[str, str], list[tuple[str, str]]]


def user_key(store_id: str, user_id: str) -> str:
    return f"aws:identity_center:{store_id}:user:{user_id}"


def _all(client: Any, operation: str, result: str, **params: Any) -> Iterator[Any]:
    """Every item of a listing, page by page: a store's users are not all held at once."""
    for page in client.get_paginator(operation).paginate(**params, PaginationConfig=PAGE):
        yield from page.get(result) or []


def _permission_set(sso: Any, instance: str, arn: str) -> dict[str, Any]:
    """The permission set with what it grants: its AWS-managed policies by ARN, its references
    to customer-managed policies (their documents live in each account's IAM), and its inline
    policy (None when it has none)."""
    which = {"InstanceArn": instance, "PermissionSetArn": arn}
    data = jsonable(sso.describe_permission_set(**which)["PermissionSet"])
    data["InstanceArn"] = instance
    # Sorted, so that a listing in another order is not a new version of the evidence (their
    # entries are names and ARNs only).
    data["ManagedPolicies"] = sorted(
        _all(sso, "list_managed_policies_in_permission_set", "AttachedManagedPolicies", **which),
        key=lambda p: str(p.get("Arn")))
    data["CustomerManagedPolicyReferences"] = sorted(
        _all(sso, "list_customer_managed_policy_references_in_permission_set",
             "CustomerManagedPolicyReferences", **which),
        key=lambda p: (str(p.get("Path", "/")), str(p.get("Name"))))
    inline = sso.get_inline_policy_for_permission_set(**which).get("InlinePolicy")
    # IAM Identity Center accepts only JSON policies, and answers "" for none.
    data["InlinePolicy"] = json.loads(inline) if inline else None
    return data


def _assignments(sso: Any, instance: str, arn: str, assigned: Assigned) -> None:
    for account in _all(sso, "list_accounts_for_provisioned_permission_set", "AccountIds",
                        InstanceArn=instance, PermissionSetArn=arn):
        for entry in _all(sso, "list_account_assignments", "AccountAssignments",
                          InstanceArn=instance, AccountId=account, PermissionSetArn=arn):
            principal = (entry["PrincipalType"], entry["PrincipalId"])
            assigned[principal].append((account, arn))


def _members(store: Any, store_id: str, groups: set[str]) -> dict[str, list[str]]:
    """The groups among `groups` that each user is a member of, by user id."""
    member_of: dict[str, list[str]] = defaultdict(list)
    for group in sorted(groups):
        for membership in _all(store, "list_group_memberships", "GroupMemberships",
                               IdentityStoreId=store_id, GroupId=group):
            user = (membership.get("MemberId") or {}).get("UserId")
            if user:
                member_of[user].append(group)
    return member_of


def _user(entry: dict[str, Any], instance: str, held: list[tuple[str, str, str | None]],
          sets: dict[str, dict[str, Any]], names: dict[str, str | None]) -> dict[str, Any]:
    """The user as the identity store lists it (without its empty attributes), with each
    assignment (account, permission set, the group it comes through or None for a direct one)
    and the permission sets those name."""
    user = jsonable({k: v for k, v in entry.items() if v is not None})
    user["InstanceArn"] = instance
    user["Assignments"] = [
        {"AccountId": account, "PermissionSetArn": arn,
         "PermissionSetName": sets[arn].get("Name"),
         "Group": None if group is None else {"GroupId": group,
                                              "DisplayName": names.get(group)}}
        for account, arn, group in sorted(held, key=lambda h: (h[0], h[1], h[2] or ""))]
    user["PermissionSets"] = [
        {k: sets[arn].get(k) for k in ("PermissionSetArn", "Name", "ManagedPolicies",
                                       "CustomerManagedPolicyReferences", "InlinePolicy")}
        for arn in sorted({arn for _, arn, _ in held})]
    return user


def _instance(session: AwsSession, scope: Scope, region: str,
              instance: dict[str, Any]) -> Iterator[Resource]:
    sso = session.client("sso-admin", region)
    store = session.client("identitystore", region)
    arn, store_id = instance["InstanceArn"], instance["IdentityStoreId"]

    sets: dict[str, dict[str, Any]] = {}
    assigned: Assigned = defaultdict(list)
    for ps_arn in _all(sso, "list_permission_sets", "PermissionSets", InstanceArn=arn):
        try:
            sets[ps_arn] = _permission_set(sso, arn, ps_arn)
            _assignments(sso, arn, ps_arn, assigned)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            sets.pop(ps_arn, None)  # deleted since it was listed: it grants nothing now
            continue
        yield scope.resource(PERMISSION_SET, ps_arn, sets[ps_arn], region)

    # Assignments listed before their permission set's deletion was noticed are dropped too.
    assigned = {p: [(a, s) for a, s in held if s in sets] for p, held in assigned.items()}
    groups = {pid for (ptype, pid), held in assigned.items() if ptype == "GROUP" and held}
    names: dict[str, str | None] = {}
    if groups:  # the store's groups are listed only for their names in assignments
        names = {g["GroupId"]: g.get("DisplayName")
                 for g in _all(store, "list_groups", "Groups", IdentityStoreId=store_id)
                 if g.get("GroupId") in groups}
    member_of = _members(store, store_id, groups)

    for entry in _all(store, "list_users", "Users", IdentityStoreId=store_id):
        user_id = entry["UserId"]
        held: list[tuple[str, str, str | None]] = [
            (account, ps, None) for account, ps in assigned.get(("USER", user_id), [])]
        held += [(account, ps, group) for group in member_of.get(user_id, [])
                 for account, ps in assigned.get(("GROUP", group), [])]
        yield scope.resource(USER, user_key(store_id, user_id),
                             _user(entry, arn, held, sets, names), region)


@service("sso-admin", kinds=KINDS, regional=True)
def identity_center(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    sso = session.client("sso-admin", region)
    for instance in _all(sso, "list_instances", "Instances"):
        yield from _instance(session, scope, region, instance)
