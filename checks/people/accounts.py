"""Accounts judged as some person's: leavers' leftovers, orphans, and privilege without MFA
or without a known owner. The subject of each result is the account's own key, so a failing
check lists the accounts to remove or fix; the reason names the person."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed


def _where(account: dict[str, Any]) -> str:
    return f"{account['source']} {account['label']}"


def _unread(account: dict[str, Any]) -> Verdict | None:
    """`error` for an account whose source could not be read now: its record is from an
    earlier run, and judging that again would pass what nobody saw."""
    if account.get("unread"):
        return errored(f"{_where(account)} could not be read now: {account['unread']}")
    return None


def _excused(account: dict[str, Any]) -> tuple[bool, str]:
    """(still excused, why) by the mapping file's exception for the account, if any."""
    exception = account.get("exception")
    if not exception:
        return False, ""
    until = date.fromisoformat(exception["expires"])
    what = "non-human account" if exception.get("non_human") else "exception"
    why = f"{what} owned by {exception['owner']}"
    if exception.get("reason"):
        why += f" ({exception['reason']})"
    if until < datetime.now(UTC).date():
        return False, f"{why} expired on {until.isoformat()}"
    return True, f"{why} until {until.isoformat()}"


@check(
    "people.leaver_holds_no_active_account",
    resource="people.account",
    title="Nobody the identity provider has deactivated still holds an active account elsewhere",
    controls={
        "A.5.18": "access rights are removed when the person leaves, in every source",
        "A.6.5": "termination in the identity provider is followed by deprovisioning everywhere",
        "A.5.16": "identities disabled centrally must not live on as cloud or code accounts",
    },
    severity="critical",
    remediation="Remove the account (delete the IAM user's keys and password, the GitHub "
                "membership, the role binding), or document it as an exception in the "
                "people mapping file with an owner and an expiry.",
)
def leaver_holds_no_active_account(account: dict[str, Any]) -> Verdict:
    if unread := _unread(account):
        return unread
    person = account.get("person")
    if account["identity_provider_record"] or not person or not person.get("gone"):
        return not_applicable("not the account of someone who left")
    if account["active"] is None:
        return errored(f"whether {_where(account)} can still be used could not be read")
    who = f"{person['email']} is {person['status']} in {person['identity_provider']}"
    if account["active"]:
        return failed(f"{who}, but {_where(account)} is still usable: {account['why_active']}")
    return passed(f"{who}, and {_where(account)} can no longer be used")


@check(
    "people.account_belongs_to_active_person",
    resource="people.account",
    title="Every usable account belongs to an active person or is a documented exception",
    controls={
        "A.5.16": "each account is tied to one known identity; orphaned accounts are found and "
                  "removed or owned",
    },
    severity="high",
    remediation="Link the account to its person in the people mapping file (`accounts:`), or "
                "list it under `exceptions:` with an owner, a reason and an expiry; remove "
                "it if nobody owns it.",
)
def account_belongs_to_active_person(account: dict[str, Any]) -> Verdict:
    if unread := _unread(account):
        return unread
    if account["identity_provider_record"]:
        return not_applicable("the person's own identity provider record")
    if account["active"] is False:
        return not_applicable(f"{_where(account)} can no longer be used")
    if account["active"] is None:
        return errored(f"whether {_where(account)} can still be used could not be read")
    person = account.get("person")
    excused, why = _excused(account)
    if person and person["known"] and not person["gone"]:
        return passed(f"{_where(account)} belongs to {person['email']} (by {account['linked_by']})")
    if excused:
        return passed(f"{_where(account)}: {why}")
    if why:
        return failed(f"{_where(account)}: {why}")
    if person and not person["known"]:
        return failed(f"{_where(account)} is mapped to {person['email']}, whom "
                      f"{person['identity_provider']} does not know")
    if person:
        return failed(f"{_where(account)} belongs to {person['email']}, who is "
                      f"{person['status']}")
    if account["candidates"]:
        return failed(f"{_where(account)} matches several people "
                      f"({', '.join(account['candidates'])}): link it in the mapping file")
    if account["human"] is False:
        return not_applicable(f"{_where(account)} is a service identity")
    return failed(f"{_where(account)} belongs to no known person")


@check(
    "people.privileged_account_has_mfa",
    resource="people.account",
    title="Whoever holds privilege anywhere signs in with MFA, in the identity provider and in "
          "the source where it has MFA of its own",
    controls={
        "A.8.2": "privileged rights are held only by people whose sign-in is strongly "
                 "authenticated",
        "A.8.5": "MFA on every path to privilege, the identity provider's and the source's own",
    },
    severity="critical",
    remediation="Enrol the person in MFA in the identity provider, and in the source itself "
                "where it has its own (an IAM user's console MFA device).",
)
def privileged_account_has_mfa(account: dict[str, Any]) -> Verdict:
    if unread := _unread(account):
        return unread
    if not account["privileged"]:
        return not_applicable("no privilege")
    person = account.get("person")
    held = f"{_where(account)} holds {', '.join(account['privileges'])}"
    if not person or not person["known"]:
        return not_applicable(f"{held}; its owner is judged by "
                              "people.privilege_held_through_known_account")
    gaps = []
    if person["mfa"] is False:
        gaps.append(f"{person['email']} has no MFA in {person['identity_provider']}")
    if account["mfa"] is False and not account["identity_provider_record"]:
        gaps.append(f"the account has no MFA in {account['source']}")
    if gaps:
        return failed(f"{held}: " + "; ".join(gaps))
    if person["mfa"] is None:
        return errored(f"{held}: MFA of {person['email']} could not be read")
    return passed(f"{held}, with MFA")


@check(
    "people.privilege_held_through_known_account",
    resource="people.account",
    title="Nobody holds privilege through an account that the identity provider does not know",
    controls={
        "A.8.2": "every privileged account has a known, accountable holder",
        "A.5.16": "privileged identities outside the identity provider escape its lifecycle",
    },
    severity="critical",
    remediation="Link the account to its person in the people mapping file, or list it as an "
                "exception (break-glass) with an owner and an expiry; remove the privilege "
                "otherwise.",
)
def privilege_held_through_known_account(account: dict[str, Any]) -> Verdict:
    if unread := _unread(account):
        return unread
    if not account["privileged"] or account["active"] is False:
        return not_applicable("no usable privilege")
    person = account.get("person")
    held = f"{_where(account)} holds {', '.join(account['privileges'])}"
    if person and person["known"]:
        return passed(f"{held} for {person['email']}")
    excused, why = _excused(account)
    if excused:
        return passed(f"{held}: {why}")
    return failed(f"{held} and " + (why or "belongs to no person the identity provider knows"))
