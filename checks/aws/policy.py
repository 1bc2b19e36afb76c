"""The IAM policy reader every AWS check judges policies with.

It reads documents as IAM, S3 and STS return them (a dict, JSON text, or URL-encoded JSON
text), their statements (one or a list), Effect, Action/NotAction, Resource/NotResource, every
Principal form and Condition blocks, and answers two questions:

- Does a set of identity policies grant full admin? Matching is done on probes, not on
  spellings: the policies must allow an action of a service that does not exist on a resource
  that does not exist (only "every action on every resource" allows that, whether written `*`,
  `*:*`, `NotAction`, `NotResource` or `arn:aws:*`), and must still allow IAM's policy-granting
  actions, so that whatever a `NotAction`, `NotResource` or `Deny` leaves out the holder can
  grant back to themselves. `NotAction: iam:*` (power user) is therefore not full admin,
  `NotAction: s3:DeleteBucket` is. An Allow's condition does not reduce what it grants, only
  when; a Deny counts only without a condition, since a conditional one leaves the grant
  usable whenever its condition is false.
- Does a resource or trust policy let everyone in? A statement does when its principal covers
  everyone and no condition narrows it. A condition narrows only when it pins a key that
  identifies the caller (account, organisation, principal, source account, resource, VPC or
  network) to fixed values: wildcards, policy variables, address ranges that cover a large
  part of the internet, negated and `...IfExists` operators, `ForAllValues:` (true when the
  key is absent), `Null`, `Bool` and the other operators never narrow. `sts:ExternalId` does
  not narrow either: AWS documents it as not secret, so anyone who learns it passes. An Allow
  is cancelled by a Deny to everyone of at least its actions and resources that is
  unconditional or applies to everyone outside a pinned account, organisation or network.

Anything the reader cannot read raises PolicyError; checks report it as `error`, never `pass`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from checks.address_ranges import coverage

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
ADMINISTRATOR_ACCESS = "iam::aws:policy/AdministratorAccess"  # the ARN after arn:<partition>:
# An AWS-managed policy is not collected; this one's document is fixed and public.
ADMINISTRATOR_DOCUMENT = {"Version": "2012-10-17",
                          "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

# Actions of services and resources that do not exist, sharing no letter: only a pattern that
# matches every action (or resource) matches them all.
_ANY_ACTION = ("a:b", "zz-yy:Xw9", "qqq:Vvv")
_ANY_RESOURCE = ("arn:{p}:zzprobe:qq-west-9:000000000000:vv/ww", "arn:{p}:s3:::bkt")
# With any of these on any IAM principal or policy, the holder grants themselves the rest.
IAM_GRANT_ACTIONS = (
    "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:AttachGroupPolicy", "iam:PutGroupPolicy",
    "iam:AttachRolePolicy", "iam:PutRolePolicy", "iam:CreatePolicyVersion",
    "iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy",
)
_IAM_RESOURCES = tuple(f"arn:{{p}}:iam::000000000000:{kind}/zz-probe"
                       for kind in ("user", "group", "role", "policy"))

_ACCOUNT_KEYS = frozenset({
    "aws:principalaccount", "aws:sourceaccount", "aws:sourceowner", "aws:principalorgid",
    "aws:sourceorgid", "aws:sourcevpc", "aws:sourcevpce", "aws:principalservicename",
    "s3:dataaccesspointaccount",
})
_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn", "s3:dataaccesspointarn"})
_PATH_KEYS = frozenset({"aws:principalorgpaths", "aws:sourceorgpaths"})
_IP_KEYS = frozenset({"aws:sourceip", "aws:vpcsourceip"})
_USERID_KEY = "aws:userid"
NARROWING_KEYS = _ACCOUNT_KEYS | _ARN_KEYS | _PATH_KEYS | _IP_KEYS | {_USERID_KEY}
_POSITIVE = frozenset({"stringequals", "stringequalsignorecase", "stringlike", "arnequals",
                       "arnlike"})
_NEGATED = frozenset({"stringnotequals", "stringnotequalsignorecase", "stringnotlike",
                      "arnnotequals", "arnnotlike"})
# Identity providers that issue tokens to anyone: a trust in them is public unless the
# condition pins the provider's key that names the application or the subject.
PUBLIC_IDENTITY_PROVIDERS = {
    "cognito-identity.amazonaws.com": ("aud",),
    "accounts.google.com": ("aud", "oaud", "sub"),
    "graph.facebook.com": ("app_id", "id"),
    "www.amazon.com": ("app_id", "user_id"),
    "token.actions.githubusercontent.com": ("sub",),
}
# Variables that stand for the resource's own account or organisation: fixed values.
_OWN_VARIABLE = re.compile(r"\$\{aws:resource(account|orgid)\}", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{[^}]*\}")


class PolicyError(ValueError):
    """A policy document that cannot be read as IAM reads it."""


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def document(value: Any) -> dict[str, Any]:
    """A policy document from a dict or its JSON text, URL-encoded or not."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            text = unquote(text)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(f"policy document is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise PolicyError(f"policy document is a {type(value).__name__}, not an object")
    return value


def statements(value: Any) -> list[dict[str, Any]]:
    """The statements of a document (one statement or a list of them)."""
    found = as_list(document(value).get("Statement"))
    for statement in found:
        if not isinstance(statement, dict):
            raise PolicyError(f"a statement is a {type(statement).__name__}, not an object")
    return found


def default_document(policy: dict[str, Any]) -> dict[str, Any] | None:
    """The default version's document of a managed policy as IAM lists it (DefaultVersion,
    or the version of PolicyVersionList marked default); None if neither was collected."""
    version = policy.get("DefaultVersion")
    if version is None:
        version = next((v for v in as_list(policy.get("PolicyVersionList"))
                        if isinstance(v, dict) and v.get("IsDefaultVersion")), None)
    if not isinstance(version, dict) or version.get("Document") is None:
        return None
    return document(version["Document"])


def _effect(statement: dict[str, Any]) -> str:
    return str(statement.get("Effect", "")).lower()


@lru_cache(maxsize=4096)
def _glob(pattern: str, variables_match: bool, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcard matching: `*` any run of characters (colons and slashes included), `?`
    one. A policy variable matches anything or nothing, as the caller's safe side needs."""
    parts = []
    for piece in re.split(r"(\$\{[^}]*\}|\*|\?)", pattern):
        if piece == "*":
            parts.append(".*")
        elif piece == "?":
            parts.append(".")
        elif piece.startswith("${") and piece.endswith("}"):
            parts.append(".*" if variables_match else "(?!)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(patterns: list[Any], value: str, *, variables_match: bool,
             ignore_case: bool) -> bool:
    return any(isinstance(p, str) and _glob(p, variables_match, ignore_case).fullmatch(value)
               for p in patterns)


def _applies(statement: dict[str, Any], field: str, value: str, *, generous: bool,
             ignore_case: bool) -> bool:
    """Whether `statement`'s `field` (Action or Resource, or its Not form) covers `value`.
    `generous` widens policy variables where the statement grants and narrows them where it
    excludes, so that doubt never shrinks an Allow nor widens a Deny."""
    if field in statement:
        return _matches(as_list(statement[field]), value, variables_match=generous,
                        ignore_case=ignore_case)
    if f"Not{field}" in statement:
        return not _matches(as_list(statement[f"Not{field}"]), value,
                            variables_match=not generous, ignore_case=ignore_case)
    return False


def allows(found: Iterable[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether identity statements allow `action` on `resource` for some request: an Allow
    covers it, whatever its condition, and no unconditional Deny does."""
    allowed = denied = False
    for statement in found:
        effect = _effect(statement)
        if effect == "allow" and not allowed:
            allowed = (_applies(statement, "Action", action, generous=True, ignore_case=True)
                       and _applies(statement, "Resource", resource, generous=True,
                                    ignore_case=False))
        elif effect == "deny" and not statement.get("Condition"):
            denied = denied or (
                _applies(statement, "Action", action, generous=False, ignore_case=True)
                and _applies(statement, "Resource", resource, generous=False,
                             ignore_case=False))
    return allowed and not denied


def partition_of(arn: Any) -> str:
    """The partition of the account an ARN belongs to (aws when it cannot be told)."""
    fields = arn.split(":") if isinstance(arn, str) else []
    return fields[1] if len(fields) > 1 and fields[1] in PARTITIONS else "aws"


def grants_full_admin(*documents: Any, partition: str = "aws") -> bool:
    """Whether these identity policies together (a principal's attached, inline and group
    policies) allow every action on every resource of the account's partition, as the module
    docstring defines it."""
    found = [s for d in documents for s in statements(d)]
    everything = all(allows(found, action, resource.format(p=partition))
                     for action in _ANY_ACTION for resource in _ANY_RESOURCE)
    return everything and any(allows(found, action, resource.format(p=partition))
                              for action in IAM_GRANT_ACTIONS for resource in _IAM_RESOURCES)


def is_administrator_access(arn: Any) -> bool:
    return isinstance(arn, str) and arn.split(":", 2)[-1] == ADMINISTRATOR_ACCESS


# --- who a resource or trust policy lets in -------------------------------------------------

def _wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def everyone(principal: Any) -> bool:
    """Whether a Principal names every AWS principal or anonymous caller. A wildcard in any
    principal type counts: IAM refuses partial wildcards, and reading one as narrower than
    everyone could pass a policy IAM has not checked."""
    if isinstance(principal, str):
        return _wildcard(principal)
    if principal is None:
        return False
    if not isinstance(principal, dict):
        raise PolicyError(f"Principal is a {type(principal).__name__}")
    for values in principal.values():
        for value in as_list(values):
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise PolicyError(f"a principal is a {type(value).__name__}, not a name")
            if _wildcard(str(value)):
                return True
    return False


def _fixed(value: str) -> str | None:
    """`value` with the resource's own account or organisation filled in, or None when it
    holds any other policy variable (it is not a fixed value then)."""
    value = _OWN_VARIABLE.sub("RESOURCE-OWN", value)
    return None if _VARIABLE.search(value) else value


def _pins(key: str, value: Any) -> bool:
    """Whether one condition value pins `key` to callers that are not everyone."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = _fixed(str(value).strip())
    if not text:
        return False
    if key in _ARN_KEYS:
        fields = text.split(":", 5)
        # A wildcard before the account can span colons into another account's ARN; a region
        # of exactly `*` after a fixed service cannot in practice, as no service's names up to
        # the account hold colons.
        region_any = fields[3:4] == ["*"]
        if len(fields) < 6 or fields[0].lower() != "arn" or any(
                _wildcard(f) for i, f in enumerate(fields[:5]) if not (i == 3 and region_any)):
            return False
        # An ARN without an account (an S3 bucket) is pinned by its resource name.
        return bool(fields[4]) or (bool(fields[5]) and not _wildcard(fields[5]))
    if key in _PATH_KEYS:
        first = text.split("/", 1)[0]
        return bool(first) and not _wildcard(first)
    if key == _USERID_KEY:
        first = text.split(":", 1)[0]
        return bool(first) and not _wildcard(first)
    return not _wildcard(text)


def _clauses(condition: Any) -> list[tuple[str, str, list[Any]]]:
    """(operator, key, values) of a Condition block, operator and key in lower case."""
    if not condition:
        return []
    if not isinstance(condition, dict):
        raise PolicyError(f"Condition is a {type(condition).__name__}, not an object")
    found = []
    for operator, block in condition.items():
        if not isinstance(block, dict):
            raise PolicyError(f"Condition {operator} is a {type(block).__name__}")
        found += [(str(operator).lower(), str(key).lower(), as_list(values))
                  for key, values in block.items()]
    return found


def _narrows(operator: str, key: str, values: list[Any]) -> bool:
    if operator.startswith("forallvalues:"):  # true when the request lacks the key
        return False
    operator = operator.removeprefix("foranyvalue:")
    if not values:
        return False
    if key in _IP_KEYS:
        if operator != "ipaddress":
            return False
        union = coverage(values)
        return not union.malformed and bool(union.networks) and not union.broad
    return (operator in _POSITIVE and key in NARROWING_KEYS
            and all(_pins(key, value) for value in values))


def narrowed(condition: Any) -> bool:
    """Whether a condition limits a statement to callers that are not everyone. Clauses are
    ANDed, so one narrowing clause is enough."""
    return any(_narrows(*clause) for clause in _clauses(condition))


def _federation_narrowed(provider: str, condition: Any) -> bool:
    keys = PUBLIC_IDENTITY_PROVIDERS[provider]
    for operator, key, values in _clauses(condition):
        operator = operator.removeprefix("foranyvalue:")
        name, _, claim = key.rpartition(":")
        if operator not in _POSITIVE or name != provider or claim not in keys or not values:
            continue
        if provider == "token.actions.githubusercontent.com":
            # repo:<owner>/... pins an owner; repo:* or repo:own* lets any repository in.
            pinned = all(isinstance(v, str) and "/" in re.split(r"[*?]", v, maxsplit=1)[0]
                         for v in values)
        else:
            pinned = all(isinstance(v, str) and v and not _wildcard(v) for v in values)
        if pinned:
            return True
    return False


def _public_providers(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return []
    found = []
    for value in as_list(principal.get("Federated")):
        provider = str(value).rsplit("oidc-provider/", 1)[-1].lower()
        if provider in PUBLIC_IDENTITY_PROVIDERS:
            found.append(provider)
    return found


def _grants_everyone(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    if "NotPrincipal" in statement:  # everyone except the principals named
        return not narrowed(condition)
    if everyone(statement.get("Principal")):
        return not narrowed(condition)
    return any(not _federation_narrowed(p, condition) for p in _public_providers(statement))


def _covers(deny: dict[str, Any], allow: dict[str, Any], field: str,
            ignore_case: bool) -> bool:
    """Whether the Deny's `field` covers every value the Allow's does."""
    if field not in deny:
        return False  # a Deny's Not form excludes something: never assumed to cover
    denied = as_list(deny[field])
    if f"Not{field}" in allow:
        probes = _ANY_ACTION if field == "Action" else [r.format(p="aws") for r in _ANY_RESOURCE]
        return all(_matches(denied, probe, variables_match=False, ignore_case=ignore_case)
                   for probe in probes)
    granted = as_list(allow.get(field))
    return bool(granted) and all(
        isinstance(g, str) and _matches(denied, g, variables_match=False,
                                        ignore_case=ignore_case)
        for g in granted)


def _denies_outsiders(deny: dict[str, Any]) -> bool:
    """Whether a Deny's condition holds for every caller outside what it pins: it is absent,
    or each of its clauses is a negated match on a key that identifies the caller."""
    clauses = _clauses(deny.get("Condition"))
    for operator, key, values in clauses:
        base = operator.removeprefix("foranyvalue:").removesuffix("ifexists")
        if key in _IP_KEYS:
            union = coverage(values)
            if base != "notipaddress" or union.malformed or not union.networks or union.broad:
                return False
        elif base not in _NEGATED or key not in NARROWING_KEYS or not values \
                or not all(_pins(key, v) for v in values):
            return False
    return True


def _cancelled(allow: dict[str, Any], found: list[dict[str, Any]]) -> bool:
    return any(
        _effect(deny) == "deny" and "NotPrincipal" not in deny
        and everyone(deny.get("Principal"))
        and _covers(deny, allow, "Action", True) and _covers(deny, allow, "Resource", False)
        and _denies_outsiders(deny)
        for deny in found)


def public_statements(value: Any) -> list[dict[str, Any]]:
    """The Allow statements of a resource or trust policy that let everyone in."""
    found = statements(value)
    return [s for s in found
            if _effect(s) == "allow" and _grants_everyone(s) and not _cancelled(s, found)]


def requires_mfa(statement: dict[str, Any]) -> bool:
    """Whether a statement applies only to callers who used MFA: Bool
    aws:MultiFactorAuthPresent true, or a NumericLessThan on aws:MultiFactorAuthAge. Their
    IfExists forms let long-term keys, which carry no MFA key at all, through."""
    for operator, key, values in _clauses(statement.get("Condition")):
        if operator == "bool" and key == "aws:multifactorauthpresent" \
                and [str(v).lower() for v in values] == ["true"]:
            return True
        if operator in ("numericlessthan", "numericlessthanequals") \
                and key == "aws:multifactorauthage" and values:
            return True
    return False


def statement_names(found: list[dict[str, Any]]) -> str:
    return ", ".join(str(s.get("Sid") or f"#{i}") for i, s in enumerate(found, 1))
