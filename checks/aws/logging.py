"""Account activity logging and monitoring: CloudTrail records every region's management events
into protected, verifiable logs; AWS Config records configuration changes and GuardDuty watches
for threats in every collected region."""

from __future__ import annotations

from typing import Any

from checks.registry import ScopeView, check, scope_check
from collector.model import FETCH_ERRORS, Verdict, errored, failed, passed


def is_logging(trail: dict[str, Any]) -> bool:
    return (trail.get("status") or {}).get("IsLogging") is True


def logs_all_management_events(trail: dict[str, Any]) -> bool:
    selectors = trail.get("event_selectors") or {}
    # A trail without selectors logs all read and write management events (AWS reports that
    # default as one selector; emulators may report none).
    if not selectors.get("EventSelectors") and not selectors.get("AdvancedEventSelectors"):
        return True
    if any(s.get("IncludeManagementEvents") and s.get("ReadWriteType") == "All"
           and not s.get("ExcludeManagementEventSources")
           for s in selectors.get("EventSelectors") or []):
        return True
    # Any field besides eventCategory (readOnly, eventSource, ...) keeps only some of them.
    return any(
        [(f.get("Field"), f.get("Equals")) for f in advanced.get("FieldSelectors") or []]
        == [("eventCategory", ["Management"])]
        for advanced in selectors.get("AdvancedEventSelectors") or []
    )


@scope_check(
    "aws.cloudtrail.multi_region_trail_enabled",
    scope="aws.account",
    uses=("aws.cloudtrail.trail",),
    title="A multi-region CloudTrail trail is logging all management events",
    controls={"A.8.15": "every API call that changes or reads the account's configuration, in "
                        "every region, is recorded with who made it and when"},
    severity="high",
    remediation="Create a multi-region trail (or an organisation trail) that logs all read and "
                "write management events, and start logging on it.",
)
def multi_region_trail_enabled(account: ScopeView) -> Verdict:
    trails = [t for t in account.of("aws.cloudtrail.trail") if t.get("IsMultiRegionTrail")]
    good = [t["Name"] for t in trails if is_logging(t) and logs_all_management_events(t)]
    if good:
        return passed(f"multi-region trail {', '.join(sorted(good))} is logging all "
                      "management events")
    unknown = [t["Name"] for t in trails
               if {"status", "event_selectors"} & set(t.get(FETCH_ERRORS) or {})]
    if unknown:
        return errored(f"status of multi-region trail {', '.join(sorted(unknown))} could not "
                       "be collected")
    if not trails:
        return failed("no multi-region trail")
    gaps = [f"{t['Name']} " + ("is not logging" if not is_logging(t)
                               else "misses read or write management events")
            for t in sorted(trails, key=lambda t: t["Name"])]
    return failed(f"multi-region trail {'; '.join(gaps)}")


@check(
    "aws.cloudtrail.trail_logging_enabled",
    resource="aws.cloudtrail.trail",
    title="CloudTrail trails are logging",
    controls={"A.8.15": "a stopped trail records nothing, and stopping one is a way to hide "
                        "activity"},
    severity="high",
    remediation="Start logging on the trail (StartLogging), or delete it if it is no longer "
                "meant to run.",
    needs=("status",),
)
def trail_logging_enabled(trail: dict[str, Any]) -> Verdict:
    if is_logging(trail):
        return passed("logging")
    stopped = (trail.get("status") or {}).get("StopLoggingTime")
    return failed(f"not logging (stopped {stopped})" if stopped else "not logging")


@check(
    "aws.cloudtrail.trail_log_file_validation_enabled",
    resource="aws.cloudtrail.trail",
    title="CloudTrail trails write signed digests of their log files",
    controls={
        "A.8.15": "logs are protected against tampering: any change or deletion of a log file "
                  "is detectable",
        "A.5.28": "the digests prove that logs kept as evidence are complete and unaltered",
    },
    severity="medium",
    remediation="Enable log file validation on the trail (UpdateTrail "
                "EnableLogFileValidation=true).",
)
def trail_log_file_validation_enabled(trail: dict[str, Any]) -> Verdict:
    if trail.get("LogFileValidationEnabled"):
        return passed("log file validation enabled")
    return failed("log file validation disabled")


@check(
    "aws.cloudtrail.trail_encrypted_with_kms",
    resource="aws.cloudtrail.trail",
    title="CloudTrail trails encrypt their log files with a KMS key",
    controls={
        "A.8.24": "log files are encrypted at rest with a managed key",
        "A.8.15": "reading the logs needs decrypt rights on the key as well as read access to "
                  "the bucket, protecting log information from unauthorised access",
    },
    severity="medium",
    remediation="Set a customer-managed KMS key on the trail (UpdateTrail KmsKeyId=...).",
)
def trail_encrypted_with_kms(trail: dict[str, Any]) -> Verdict:
    if trail.get("KmsKeyId"):
        return passed(f"encrypted with {trail['KmsKeyId']}")
    return failed("log files not encrypted with a KMS key")


def _coverage(group: dict[str, Any]) -> str:
    excluded = (group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or []
    if group.get("allSupported"):
        return "all supported resource types"
    if excluded:
        return f"all supported resource types but {len(excluded)}"
    return f"{len(group.get('resourceTypes') or [])} chosen resource types"


@check(
    "aws.config.recording_in_region",
    resource="aws.config.region",
    title="AWS Config is recording in every collected region",
    controls={"A.8.9": "the configuration of resources in the region, and every change to it, "
                       "is recorded and can be reviewed"},
    severity="medium",
    remediation="Create a configuration recorder and delivery channel in the region and start "
                "the recorder (StartConfigurationRecorder).",
    needs=("recorder_status",),
)
def recording_in_region(region: dict[str, Any]) -> Verdict:
    recorders = region.get("recorders") or []
    if not recorders:
        return failed("no configuration recorder")
    status = {s.get("name"): s for s in region.get("recorder_status") or []}
    recording = [r for r in recorders if status.get(r.get("name"), {}).get("recording")]
    if not recording:
        names = ", ".join(sorted(str(r.get("name")) for r in recorders))
        return failed(f"recorder {names} is not recording")
    healthy = [r for r in recording
               if str(status[r.get("name")].get("lastStatus", "")).lower() != "failure"]
    if not healthy:
        errors = sorted({str(status[r.get("name")].get("lastErrorCode")) for r in recording})
        return failed(f"recording fails: {', '.join(errors)}")
    return passed(f"recorder {healthy[0].get('name')} is recording "
                  f"{_coverage(healthy[0].get('recordingGroup') or {})}")


@check(
    "aws.guardduty.enabled_in_region",
    resource="aws.guardduty.region",
    title="GuardDuty is enabled in every collected region",
    controls={
        "A.8.16": "account, network and DNS activity in the region is continuously analysed "
                  "for anomalous and malicious behaviour",
        "A.5.7": "activity is matched against AWS and partner threat intelligence feeds "
                 "(known malicious IPs and domains)",
    },
    severity="high",
    remediation="Enable GuardDuty in the region (CreateDetector Enable=true), ideally for all "
                "accounts through the organisation's delegated administrator.",
    needs=("detectors",),
)
def enabled_in_region(region: dict[str, Any]) -> Verdict:
    detectors = region.get("detectors") or []
    enabled = [d["DetectorId"] for d in detectors if d.get("Status") == "ENABLED"]
    if enabled:
        return passed(f"detector {enabled[0]} enabled")
    if detectors:
        return failed(f"detector {detectors[0]['DetectorId']} suspended")
    return failed("no detector")
