"""The IAM policy reader, through the checks that judge with it: full admin in every spelling
and by every path, public principals that conditions do or do not narrow, and security groups
opened to the internet by ranges that only together cover it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from checks.aws.policy import PolicyError, document, grants_full_admin, statements
from checks.registry import REGISTRY, load_all

load_all()
ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::acme-data"


def status(check_id: str, data: dict[str, Any]) -> str:
    return REGISTRY[check_id].evaluate(data).status


def allow(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


def managed(document_: Any) -> dict[str, Any]:
    return {"Arn": f"arn:aws:iam::{ACCOUNT}:policy/p", "AttachmentCount": 1,
            "DefaultVersion": {"VersionId": "v2", "IsDefaultVersion": True,
                               "Document": document_}}


# --- reading documents ------------------------------------------------------------------

def test_documents_are_read_as_iam_returns_them() -> None:
    policy = allow(Action="*", Resource="*")
    text = json.dumps(policy)
    assert document(policy) == document(text) == document(quote(text)) == policy
    single = {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}
    assert statements(single) == [single["Statement"]]
    for bad in ("{not json", "[]", 7, {"Statement": ["Allow"]}):
        with pytest.raises(PolicyError):
            statements(bad)


# --- full admin ----------------------------------------------------------------------------

FULL_ADMIN = [
    allow(Action="*", Resource="*"),
    allow(Action="*:*", Resource="*"),
    allow(Action=["s3:GetObject", "*"], Resource=["arn:aws:s3:::b", "*"]),
    allow(Action="*", Resource="arn:aws:*"),
    allow(Action="*", Resource="arn:*:*:*:*:*"),
    allow(Action="*", NotResource=f"arn:aws:s3:::{'audit-logs'}"),
    allow(Action="*", NotResource=["arn:aws:s3:::a", "arn:aws:s3:::a/*"]),
    allow(NotAction="s3:DeleteBucket", Resource="*"),
    allow(NotAction=["ec2:TerminateInstances", "iam:DeleteUser"], Resource="*"),
    allow(NotAction="organizations:*", NotResource="arn:aws:s3:::x"),
    allow(Action="*", Resource="*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}},
    json.dumps(allow(Action="*", Resource="*")),
    quote(json.dumps(allow(Action="*:*", Resource="*"))),
    # A conditional Deny leaves the grant whenever its condition is false.
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "*", "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]},
    # A Deny of a few actions leaves the holder the power to grant them back.
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]},
]
NOT_FULL_ADMIN = [
    allow(Action="iam:*", Resource="*"),
    allow(Action="s3:*", Resource="*"),
    allow(Action=["ec2:*", "s3:*", "lambda:*"], Resource="*"),
    allow(Action="*", Resource="arn:aws:s3:::acme-*"),
    allow(Action="*", Resource=f"arn:aws:ec2:*:{ACCOUNT}:instance/*"),
    allow(NotAction="iam:*", Resource="*"),  # power user
    allow(NotAction=["iam:*", "organizations:*", "account:*"], Resource="*"),
    allow(Action="*", NotResource="*"),
    allow(Action="*", NotResource="arn:aws:iam::*"),
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "*", "Resource": "*"}]},
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}]},
    {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]},
    {"Statement": []},
]


@pytest.mark.parametrize("doc", FULL_ADMIN)
def test_every_spelling_of_full_admin_fails_the_policy_check(doc: Any) -> None:
    assert grants_full_admin(doc)
    assert status("aws.iam.policy_grants_no_full_admin", managed(doc)) == "fail"


@pytest.mark.parametrize("doc", NOT_FULL_ADMIN)
def test_grants_short_of_full_admin_pass_the_policy_check(doc: Any) -> None:
    assert not grants_full_admin(doc)
    assert status("aws.iam.policy_grants_no_full_admin", managed(doc)) == "pass"


def test_the_default_version_is_judged_wherever_it_is_listed() -> None:
    versions = {"Arn": "p", "PolicyVersionList": [
        {"VersionId": "v1", "IsDefaultVersion": False, "Document": allow(Action="*",
                                                                          Resource="*")},
        {"VersionId": "v2", "IsDefaultVersion": True,
         "Document": quote(json.dumps(allow(Action="*", NotResource="arn:aws:s3:::b")))}]}
    assert status("aws.iam.policy_grants_no_full_admin", versions) == "fail"
    versions["PolicyVersionList"][1]["Document"] = allow(Action="s3:*", Resource="*")
    assert status("aws.iam.policy_grants_no_full_admin", versions) == "pass"
    assert status("aws.iam.policy_grants_no_full_admin", {"Arn": "p"}) == "error"
    assert status("aws.iam.policy_grants_no_full_admin", managed("{broken")) == "error"


def attached(name: str, doc: Any | None = None, *, aws_managed: bool = False) -> dict[str, Any]:
    owner = "aws" if aws_managed else ACCOUNT
    entry = {"PolicyName": name, "PolicyArn": f"arn:aws:iam::{owner}:policy/{name}"}
    if doc is not None:
        entry["Document"] = doc
    return entry


def a_user(**fields: Any) -> dict[str, Any]:
    return {"UserName": "u", "AttachedManagedPolicies": [], "UserPolicyList": [],
            "GroupList": [], "Groups": [], **fields}


ADMIN_DOC = allow(Action="*", Resource="*")
DIRECT = "aws.iam.user_has_no_direct_admin_rights"
ANY_PATH = "aws.iam.user_holds_no_full_admin"


@pytest.mark.parametrize("user", [
    a_user(AttachedManagedPolicies=[attached("OrgAdmin", ADMIN_DOC)]),
    a_user(AttachedManagedPolicies=[attached("AllButOne", allow(NotAction="s3:DeleteBucket",
                                                                  Resource="*"))]),
    a_user(AttachedManagedPolicies=[attached("AdministratorAccess", aws_managed=True)]),
    a_user(UserPolicyList=[{"PolicyName": "inline", "PolicyDocument": quote(json.dumps(
        allow(Action="*:*", NotResource=BUCKET)))}]),
    # Neither policy is full admin alone; together they are.
    a_user(AttachedManagedPolicies=[attached("PowerUser", allow(NotAction="iam:*",
                                                                  Resource="*"))],
           UserPolicyList=[{"PolicyName": "iam", "PolicyDocument": allow(Action="iam:*",
                                                                           Resource="*")}]),
])
def test_full_admin_attached_to_the_user_fails_both_user_checks(user: dict[str, Any]) -> None:
    assert status(DIRECT, user) == "fail"
    assert status(ANY_PATH, user) == "fail"


def test_full_admin_through_a_group_fails_the_user_and_the_group() -> None:
    group = {"GroupName": "admins", "AttachedManagedPolicies": [attached("OrgAdmin", ADMIN_DOC)],
             "GroupPolicyList": []}
    user = a_user(GroupList=["admins"], Groups=[group])
    assert status(DIRECT, user) == "pass"
    verdict = REGISTRY[ANY_PATH].evaluate(user)
    assert verdict.status == "fail" and "group admins: OrgAdmin" in verdict.reason
    assert status("aws.iam.group_grants_no_full_admin", group) == "fail"
    inline = {"GroupName": "ops", "AttachedManagedPolicies": [], "GroupPolicyList": [
        {"PolicyName": "all", "PolicyDocument": allow(NotAction="s3:*", Resource="*")}]}
    assert status("aws.iam.group_grants_no_full_admin", inline) == "fail"
    assert status(ANY_PATH, a_user(GroupList=["ops"], Groups=[inline])) == "fail"
    readers = {"GroupName": "readers", "GroupPolicyList": [], "AttachedManagedPolicies": [
        attached("ReadOnlyAccess", aws_managed=True)]}
    assert status("aws.iam.group_grants_no_full_admin", readers) == "pass"
    assert status(ANY_PATH, a_user(GroupList=["readers"], Groups=[readers])) == "pass"


def test_policies_that_were_not_collected_give_error_never_pass() -> None:
    missing_document = a_user(AttachedManagedPolicies=[attached("Custom")])
    assert status(DIRECT, missing_document) == "error"
    assert status(ANY_PATH, missing_document) == "error"
    groups_not_joined = a_user(GroupList=["admins"])
    del groups_not_joined["Groups"]
    assert status(ANY_PATH, groups_not_joined) == "error"
    assert status(ANY_PATH, {**a_user(), "_errors": {"Groups": "not listed"}}) == "error"
    assert status(DIRECT, a_user(UserPolicyList=[{"PolicyName": "x",
                                                  "PolicyDocument": "%7Bbroken"}])) == "error"


ROLE_MFA = "aws.iam.role_full_admin_requires_mfa"


def a_role(trust: dict[str, Any], *policies: dict[str, Any]) -> dict[str, Any]:
    return {"RoleName": "r", "AssumeRolePolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", **trust}]},
            "AttachedManagedPolicies": list(policies), "RolePolicyList": []}


@pytest.mark.parametrize(("trust", "expected"), [
    ({"Principal": {"Service": "codebuild.amazonaws.com"}}, "fail"),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, "fail"),
    ({"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, "fail"),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
      "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}}, "fail"),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
      "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}, "pass"),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
      "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}, "pass"),
    ({"Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/okta"},
      "Action": "sts:AssumeRoleWithSAML"}, "not_applicable"),
])
def test_roles_holding_full_admin_are_named_and_need_mfa(trust: dict[str, Any],
                                                        expected: str) -> None:
    role = a_role(trust, attached("OrgAdmin", ADMIN_DOC))
    verdict = REGISTRY[ROLE_MFA].evaluate(role)
    assert verdict.status == expected and "OrgAdmin" in verdict.reason
    readonly = a_role(trust, attached("ReadOnlyAccess", aws_managed=True))
    assert status(ROLE_MFA, readonly) == "not_applicable"


# --- public resource and trust policies -----------------------------------------------

PUBLIC = [
    {"Principal": "*"},
    {"Principal": {"AWS": "*"}},
    {"Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "*"]}},
    {"Principal": {"CanonicalUser": "*"}},
    {"NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}},
    {"Principal": {"AWS": "*"}, "Condition": {"StringLike": {
        "aws:PrincipalArn": "arn:aws:iam::*:*"}}},
    {"Principal": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalArn": "arn:*"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalAccount": "*"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalAccount": "12345678901?"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}}},
    {"Principal": "*", "Condition": {"StringEquals": {
        "aws:PrincipalAccount": [ACCOUNT, "*"]}}},
    {"Principal": "*", "Condition": {"StringEquals": {
        "aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:root"}}},
    {"Principal": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}},
    {"Principal": "*", "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}},
    {"Principal": "*", "Condition": {"ForAllValues:StringLike": {
        "aws:PrincipalOrgPaths": "o-1/*"}}},
    {"Principal": "*", "Condition": {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "*"}}},
    {"Principal": "*", "Condition": {"Null": {"aws:PrincipalOrgID": "false"}}},
    {"Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Principal": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
    {"Principal": "*", "Condition": {"StringEquals": {"sts:ExternalId": "shared-value"}}},
    {"Principal": "*", "Condition": {"StringEquals": {"s3:prefix": "public/"}}},
    {"Principal": "*", "Condition": {"IpAddress": {
        "aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}},
    {"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["::/1", "8000::/1"]}}},
    {"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/2"}}},
    {"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24",
                                                                    "not-an-address"]}}},
    {"Principal": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:SourceIp": "203.0.113.0/24"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:s3:::*"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:SourceVpce": "vpce-*"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:userid": "*:alice"}}},
    # A wildcard before the account field can span colons into another account's ARN
    # (arn:aws:lambda:...:999999999999:function:123456789012:prod), so it pins nothing.
    {"Principal": "*", "Condition": {"ArnLike": {
        "aws:SourceArn": "arn:aws:*:*:123456789012:*"}}},
    {"Principal": "*", "Condition": {"ArnLike": {
        "aws:SourceArn": "arn:aws:lambda:us-*:123456789012:*"}}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": []}}},
]
NOT_PUBLIC = [
    {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}},
    {"Principal": {"AWS": ACCOUNT}},
    {"Principal": {"Service": "cloudtrail.amazonaws.com"}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3"}}},
    {"Principal": "*", "Condition": {"stringequals": {"AWS:PrincipalAccount": ACCOUNT}}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalAccount": int(ACCOUNT)}}},
    {"Principal": {"AWS": "*"}, "Condition": {"StringLike": {
        "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/app-*"}}},
    {"Principal": "*", "Condition": {"ArnEquals": {
        "aws:PrincipalArn": "arn:aws:iam::${aws:ResourceAccount}:root"}}},
    {"Principal": "*", "Condition": {"ForAnyValue:StringLike": {
        "aws:PrincipalOrgPaths": "o-a1b2c3/r-ab12/*"}}},
    {"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24",
                                                                    "2001:db8::/32"]}}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}},
    {"Principal": "*", "Condition": {"ArnLike": {
        "aws:SourceArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/*"}}},
    {"Principal": "*", "Condition": {"ArnLike": {
        "aws:SourceArn": "arn:aws:cloudtrail:*:123456789012:trail/*"}}},
    {"Principal": "*", "Condition": {"StringEquals": {"aws:SourceArn": "arn:aws:s3:::logs"}}},
    {"Principal": "*", "Condition": {"StringLike": {"aws:userid": "AROAEXAMPLE:*"}}},
    {"Principal": "*", "Condition": {
        "Bool": {"aws:SecureTransport": "true"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
]


def judged_bucket(statement: dict[str, Any], *more: dict[str, Any]) -> str:
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                             "Resource": f"{BUCKET}/*", **statement}, *more]}
    return status("aws.s3.bucket_policy_not_public",
                  {"policy": policy, "public_access_block": None,
                   "account_public_access_block": None})


def judged_trust(statement: dict[str, Any]) -> str:
    trust = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}]}
    return status("aws.iam.role_trust_policy_not_public",
                  {"RoleName": "r", "AssumeRolePolicyDocument": quote(json.dumps(trust))})


@pytest.mark.parametrize("statement", PUBLIC)
def test_everyone_not_narrowed_by_a_caller_pinning_condition_is_public(
        statement: dict[str, Any]) -> None:
    assert judged_bucket(statement) == "fail"
    assert judged_trust(statement) == "fail"


@pytest.mark.parametrize("statement", NOT_PUBLIC)
def test_named_or_pinned_principals_are_not_public(statement: dict[str, Any]) -> None:
    assert judged_bucket(statement) == "pass"
    assert judged_trust(statement) == "pass"


ORG_ONLY = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{BUCKET}/*",
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3"}}}


def test_a_deny_to_everyone_outside_a_pinned_caller_cancels_a_public_allow() -> None:
    public = {"Principal": "*"}
    assert judged_bucket(public, ORG_ONLY) == "pass"
    assert judged_bucket(public, {**ORG_ONLY, "Condition": None}) == "pass"
    # Denials that leave some outsiders in cancel nothing.
    for condition in ({"StringNotLike": {"aws:PrincipalOrgID": "o-*"}},
                      {"Bool": {"aws:SecureTransport": "false"}},
                      {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3"},
                       "Bool": {"aws:SecureTransport": "false"}},
                      {"NotIpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}):
        assert judged_bucket(public, {**ORG_ONLY, "Condition": condition}) == "fail", condition
    narrower = {**ORG_ONLY, "Action": "s3:PutObject"}
    assert judged_bucket(public, narrower) == "fail"
    assert judged_bucket(public, {**ORG_ONLY, "Resource": f"{BUCKET}/private/*"}) == "fail"
    assert judged_bucket(public, {**ORG_ONLY, "Principal": {"AWS": ACCOUNT}}) == "fail"


@pytest.mark.parametrize(("principal", "condition", "public"), [
    ("cognito-identity.amazonaws.com", None, True),
    ("cognito-identity.amazonaws.com",
     {"StringEquals": {"cognito-identity.amazonaws.com:aud": "eu-west-1:pool"}}, False),
    ("cognito-identity.amazonaws.com",
     {"StringLike": {"cognito-identity.amazonaws.com:aud": "*"}}, True),
    ("accounts.google.com", None, True),
    (f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
     {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}, True),
    (f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
     {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:*"}}, True),
    (f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
     {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/deploy:*"}}, False),
    (f"arn:aws:iam::{ACCOUNT}:saml-provider/okta", None, False),
])
def test_trust_in_identity_providers_that_serve_anyone(principal: str, condition: Any,
                                                      public: bool) -> None:
    statement: dict[str, Any] = {"Principal": {"Federated": principal},
                                 "Action": "sts:AssumeRoleWithWebIdentity"}
    if condition:
        statement["Condition"] = condition
    assert judged_trust(statement) == ("fail" if public else "pass")


def test_unreadable_trust_and_bucket_policies_give_error() -> None:
    assert status("aws.iam.role_trust_policy_not_public", {"RoleName": "r"}) == "error"
    assert status("aws.iam.role_trust_policy_not_public",
                  {"AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow",
                                                                "Principal": 7}]}}) == "error"
    assert status("aws.s3.bucket_policy_not_public",
                  {"policy": {"Statement": "oops"}, "public_access_block": None,
                   "account_public_access_block": None}) == "error"


# --- security groups -------------------------------------------------------------------

def tcp(port: int, v4: list[str] = (), v6: list[str] = (), to: int | None = None
        ) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port if to is None else to,
            "IpRanges": [{"CidrIp": c} for c in v4], "Ipv6Ranges": [{"CidrIpv6": c} for c in v6]}


ADMIN = "aws.ec2.security_group_admin_ports_closed_to_internet"
ALL_PORTS = "aws.ec2.security_group_all_ports_closed_to_internet"


@pytest.mark.parametrize("rules", [
    [tcp(22, ["0.0.0.0/1", "128.0.0.0/1"])],
    [tcp(22, ["0.0.0.0/1"]), tcp(22, ["128.0.0.0/1"])],
    [tcp(20, ["0.0.0.0/1"], to=30), tcp(22, ["128.0.0.0/2", "192.0.0.0/2"])],
    [tcp(3389, [f"{n}.0.0.0/8" for n in range(256)])],
    [tcp(3389, v6=["::/1"]), tcp(3389, v6=["8000::/1"])],
    [tcp(22, v6=["2000::/3"])],
    [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/1"}]},
     tcp(22, ["128.0.0.0/1"])],
    [tcp(22, ["11.0.0.0/8"])],
])
def test_admin_ports_opened_by_ranges_that_together_cover_the_internet_fail(
        rules: list[dict[str, Any]]) -> None:
    assert status(ADMIN, {"IpPermissions": rules}) == "fail"


def test_admin_ports_open_to_private_or_small_ranges_pass_and_bad_ranges_error() -> None:
    private = [tcp(22, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]),
               tcp(3389, ["203.0.113.0/24"], ["2001:db8::/32"]),
               tcp(443, ["0.0.0.0/1", "128.0.0.0/1"])]
    assert status(ADMIN, {"IpPermissions": private}) == "pass"
    assert status(ADMIN, {"IpPermissions": [tcp(22, ["10.0.0.0/33"])]}) == "error"
    assert status(ADMIN, {"IpPermissions": [tcp(22, ["10.0.0.0/33"]),
                                            tcp(3389, ["0.0.0.0/0"])]}) == "fail"


def test_every_port_opened_by_split_ranges_fails() -> None:
    every = {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535}
    split = [{**every, "IpRanges": [{"CidrIp": "0.0.0.0/1"}]},
             {**every, "IpRanges": [{"CidrIp": "128.0.0.0/1"}]}]
    assert status(ALL_PORTS, {"IpPermissions": split}) == "fail"
    assert status(ALL_PORTS, {"IpPermissions": [{"IpProtocol": "-1", "Ipv6Ranges": [
        {"CidrIpv6": "::/1"}, {"CidrIpv6": "8000::/1"}]}]}) == "fail"
    assert status(ALL_PORTS, {"IpPermissions": [{**every, "IpRanges": [
        {"CidrIp": "10.0.0.0/8"}]}]}) == "pass"


def nsg(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"securityRules": [
        {"name": f"r{i}", "properties": {"direction": "Inbound", "protocol": "Tcp",
                                          "destinationPortRange": "22", "priority": 100 + i,
                                          **rule}}
        for i, rule in enumerate(rules)]}}


def test_azure_nsgs_judge_source_prefixes_with_the_same_helper() -> None:
    ssh = "azure.network.nsg_ssh_closed_to_internet"
    halves = {"access": "Allow", "sourceAddressPrefixes": ["0.0.0.0/1", "128.0.0.0/1"]}
    assert status(ssh, nsg(halves)) == "fail"
    assert status(ssh, nsg({"access": "Allow", "sourceAddressPrefix": "11.0.0.0/7"})) == "fail"
    # A Deny closes the port only for every address; a partial one leaves the Allow deciding.
    assert status(ssh, nsg({"access": "Deny", "sourceAddressPrefix": "0.0.0.0/1"},
                           {"access": "Allow", "sourceAddressPrefix": "*"})) == "fail"
    assert status(ssh, nsg({"access": "Deny", "sourceAddressPrefixes": ["0.0.0.0/1",
                                                                        "128.0.0.0/1"]},
                           {"access": "Allow", "sourceAddressPrefix": "*"})) == "pass"
    assert status(ssh, nsg({"access": "Allow", "sourceAddressPrefix": "VirtualNetwork"},
                           {"access": "Allow", "sourceAddressPrefix": "10.0.0.0/8"})) == "pass"


def test_deeply_nested_values_neither_crash_nor_narrow() -> None:
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    assert judged_bucket({"Principal": "*", "Condition": {"IpAddress": {
        "aws:SourceIp": nested}}}) == "fail"
    assert judged_bucket({"Principal": "*", "Condition": {"StringEquals": {
        "aws:PrincipalOrgID": nested}}}) == "fail"
    assert judged_bucket({"Principal": {"AWS": nested}}) == "error"
    assert status("aws.iam.policy_grants_no_full_admin",
                  managed(allow(Action=nested, Resource="*"))) == "pass"
