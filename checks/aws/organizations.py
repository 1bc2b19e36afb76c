"""AWS Organizations as a whole: every account collected, one trail for the whole organisation,
GuardDuty and AWS Config in every account, and service control policies in force. The
organisation's scope holds, per active account, what the store knows of its collection
(`aws.organizations.member`): its last collection and its GuardDuty and Config evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.aws.logging import is_logging, logs_all_management_events
from checks.registry import ScopeView, scope_check
from checks.units import every_unit_collected, named
from collector.model import FETCH_ERRORS, Verdict, errored, failed, passed

SCOPE = "aws-organizations.organization"
MEMBER = "aws.organizations.member"


def _collected(view: ScopeView) -> list[dict[str, Any]]:
    return [m for m in view.of(MEMBER) if m.get("collected")]


@scope_check(
    "aws-organizations.every_active_account_collected",
    scope=SCOPE,
    uses=(MEMBER,),
    title="Every active account of the organisation was collected in its last run window",
    controls={
        "A.5.9": "the inventory covers every account of the organisation, each with a dated "
                 "record of its configuration no older than its collection schedule",
        "A.5.36": "every account is under continuous control monitoring: none drops out "
                  "unnoticed because its role was removed or its collection fails",
    },
    severity="high",
    remediation="Deploy the collection role (organization.role_name) to the accounts named, "
                "with a trust policy for the collector's principal, and look at their last "
                "run's error.",
)
def every_active_account_collected(org: ScopeView) -> Verdict:
    return every_unit_collected(org.of(MEMBER), "account_id", "accounts",
                                "the organisation lists no active account")


@scope_check(
    "aws-organizations.organization_trail_logging",
    scope=SCOPE,
    uses=("aws.organizations.trail",),
    title="An organisation-wide multi-region CloudTrail trail is logging all management events",
    controls={"A.8.15": "every account's API activity, in every region, is recorded in one "
                        "trail that member accounts cannot stop or alter"},
    severity="high",
    remediation="Create an organisation trail (CreateTrail IsOrganizationTrail=true, "
                "IsMultiRegionTrail=true) in the management or CloudTrail delegated "
                "administrator account, logging all management events, and start it.",
)
def organization_trail_logging(org: ScopeView) -> Verdict:
    trails = [t for t in org.of("aws.organizations.trail") if t.get("IsMultiRegionTrail")]
    good = sorted(t["Name"] for t in trails if is_logging(t) and logs_all_management_events(t))
    if good:
        return passed(f"organisation trail {', '.join(good)} is logging all management events "
                      "in every region")
    unknown = sorted(t["Name"] for t in trails
                     if {"status", "event_selectors"} & set(t.get(FETCH_ERRORS) or {}))
    if unknown:
        return errored(f"status of organisation trail {', '.join(unknown)} could not be read")
    if not trails:
        return failed("no multi-region organisation trail")
    return failed(f"organisation trail {', '.join(sorted(t['Name'] for t in trails))} is not "
                  "logging all management events")


def _coverage(org: ScopeView, kind: str, covered: Callable[[dict[str, Any]], bool | None],
              what: str) -> Verdict:
    """Each collected account covered in every collected region by `covered` (None: its
    evidence could not be read)."""
    gaps, unknown, accounts = [], [], 0
    for member in sorted(_collected(org), key=lambda m: m["account_id"]):
        accounts += 1
        regions = (member.get("evidence") or {}).get(kind) or []
        if not regions:
            unknown.append(f"{member['account_id']} has no {kind} evidence yet")
            continue
        verdicts = [covered(region) for region in regions]
        if False in verdicts:
            off = verdicts.count(False)
            gaps.append(f"{member['account_id']} in {off} of {len(regions)} regions")
        elif None in verdicts:
            unknown.append(f"{member['account_id']}: {kind} could not be read")
    if gaps:
        return failed(f"{what} is off in {len(gaps)} of {accounts} accounts: {named(gaps)}")
    if unknown:
        return errored(named(unknown))
    if not accounts:
        return errored("no account of the organisation is collected")
    return passed(f"{what} is on in every collected region of all {accounts} accounts")


def _guardduty_on(region: dict[str, Any]) -> bool | None:
    if "detectors" in (region.get(FETCH_ERRORS) or {}):
        return None
    return any(d.get("Status") == "ENABLED" for d in region.get("detectors") or [])


def _config_recording(region: dict[str, Any]) -> bool | None:
    if "recorder_status" in (region.get(FETCH_ERRORS) or {}):
        return None
    return any(s.get("recording") for s in region.get("recorder_status") or [])


@scope_check(
    "aws-organizations.guardduty_covers_every_account",
    scope=SCOPE,
    uses=(MEMBER,),
    title="GuardDuty is enabled in every collected region of every account",
    controls={"A.8.16": "threat detection watches every account of the organisation, so an "
                        "attacker cannot work from an account nobody monitors"},
    severity="high",
    remediation="Name a GuardDuty delegated administrator for the organisation and turn on "
                "auto-enable for all member accounts (UpdateOrganizationConfiguration "
                "AutoEnableOrganizationMembers=ALL), in every region.",
)
def guardduty_covers_every_account(org: ScopeView) -> Verdict:
    return _coverage(org, "aws.guardduty.region", _guardduty_on, "GuardDuty")


@scope_check(
    "aws-organizations.config_covers_every_account",
    scope=SCOPE,
    uses=(MEMBER,),
    title="AWS Config is recording in every collected region of every account",
    controls={"A.8.9": "the configuration of every account's resources, and each change to "
                       "it, is recorded and can be reviewed"},
    severity="medium",
    remediation="Deploy a configuration recorder to every account and region (a Config "
                "delegated administrator with a StackSet or conformance pack does it for the "
                "whole organisation) and start it.",
)
def config_covers_every_account(org: ScopeView) -> Verdict:
    return _coverage(org, "aws.config.region", _config_recording, "AWS Config")


@scope_check(
    "aws-organizations.scps_in_use",
    scope=SCOPE,
    uses=("aws.organizations.root", "aws.organizations.policy"),
    title="Service control policies are enabled and a policy of the organisation's own is "
          "attached",
    controls={"A.5.15": "organisation-wide guardrails bound what any identity in a member "
                        "account can do, whatever that account's own IAM policies grant"},
    severity="medium",
    remediation="Enable the SERVICE_CONTROL_POLICY policy type on the root and attach "
                "policies that deny what no account may do (leaving the organisation, "
                "disabling CloudTrail or GuardDuty, unused regions).",
)
def scps_in_use(org: ScopeView) -> Verdict:
    roots = org.of("aws.organizations.root")
    if not roots:
        return errored("the organisation's root could not be read")
    enabled = [r for r in roots if any(
        t.get("Type") == "SERVICE_CONTROL_POLICY" and t.get("Status") == "ENABLED"
        for t in r.get("PolicyTypes") or [])]
    if not enabled:
        return failed("service control policies are not enabled on the root")
    own = [p for p in org.of("aws.organizations.policy") if not p.get("AwsManaged")]
    unread = sorted(p["Name"] for p in own if "targets" in (p.get(FETCH_ERRORS) or {}))
    attached = sorted(p["Name"] for p in own if p.get("targets"))
    if attached:
        return passed(f"{len(attached)} service control policies attached: "
                      f"{named(attached)}")
    if unread:
        return errored(f"the targets of {named(unread)} could not be read")
    if own:
        return failed(f"no service control policy is attached ({len(own)} defined)")
    return failed("only the AWS-managed FullAWSAccess policy: nothing is restricted")
