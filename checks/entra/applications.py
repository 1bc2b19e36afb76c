"""Credentials of app registrations and service principals: client secrets that expired or
live longer than a year, certificates that expired. Graph lists their dates, never their
values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.registry import check
from checks.timestamps import parse
from collector.model import Verdict, failed, not_applicable, passed

# A year, its leap day included: a secret made for "12 months" in the portal passes.
MAX_SECRET_DAYS = 366
_REMEDIATE_EXPIRED = ("Delete the expired credential (Certificates & secrets); if the app "
                      "still needs one, add a new one and move its users to it first.")
_REMEDIATE_LONG = (f"Replace the secret with one valid at most {MAX_SECRET_DAYS - 1} days, or "
                   "better a certificate or a federated credential (workload identity), and "
                   "enforce the lifetime with an app management policy.")


def _label(credential: dict[str, Any]) -> str:
    return str(credential.get("displayName") or credential.get("keyId") or "unnamed")


def _expired(holder: dict[str, Any], field: str, what: str) -> Verdict:
    credentials = holder[field]
    if not credentials:
        return not_applicable(f"no {what}s")
    now = datetime.now(UTC)
    gone = [f"{_label(c)} (expired {c['endDateTime']})" for c in credentials
            if parse(c["endDateTime"]) <= now]
    if gone:
        return failed(f"expired {what}(s): {', '.join(gone)}")
    return passed(f"{len(credentials)} {what}(s), none expired")


def _long_lived(holder: dict[str, Any]) -> Verdict:
    secrets = holder["passwordCredentials"]
    if not secrets:
        return not_applicable("no client secrets")
    long = []
    for secret in secrets:
        days = (parse(secret["endDateTime"]) - parse(secret["startDateTime"])).days
        if days > MAX_SECRET_DAYS:
            long.append(f"{_label(secret)} ({days} days)")
    if long:
        return failed(f"client secret(s) valid for more than a year: {', '.join(long)}")
    return passed(f"{len(secrets)} client secret(s), each valid at most a year")


_EXPIRED_CONTROLS = {
    "A.5.17": "authentication information is managed through its lifecycle: expired secrets "
              "are revoked, not left in the directory as clutter that hides the live ones",
}
_LONG_CONTROLS = {
    "A.5.17": "a secret's lifetime bounds how long a leaked copy stays usable; rotating at "
              "least yearly is part of managing authentication information",
    "A.8.5": "long-lived shared secrets are the weakest way an application can authenticate",
}


@check("entra.application.secrets_not_expired", resource="entra.application",
       title="App registrations hold no expired client secrets",
       controls=_EXPIRED_CONTROLS, severity="low", remediation=_REMEDIATE_EXPIRED)
def application_secrets_not_expired(app: dict[str, Any]) -> Verdict:
    return _expired(app, "passwordCredentials", "client secret")


@check("entra.application.secrets_valid_at_most_one_year", resource="entra.application",
       title="App registrations' client secrets are valid for at most a year",
       controls=_LONG_CONTROLS, severity="medium", remediation=_REMEDIATE_LONG)
def application_secrets_valid_at_most_one_year(app: dict[str, Any]) -> Verdict:
    return _long_lived(app)


@check("entra.application.certificates_not_expired", resource="entra.application",
       title="App registrations hold no expired certificates",
       controls=_EXPIRED_CONTROLS, severity="low", remediation=_REMEDIATE_EXPIRED)
def application_certificates_not_expired(app: dict[str, Any]) -> Verdict:
    return _expired(app, "keyCredentials", "certificate")


@check("entra.service_principal.secrets_not_expired", resource="entra.service_principal",
       title="Service principals hold no expired client secrets",
       controls=_EXPIRED_CONTROLS, severity="low", remediation=_REMEDIATE_EXPIRED)
def service_principal_secrets_not_expired(principal: dict[str, Any]) -> Verdict:
    return _expired(principal, "passwordCredentials", "client secret")


@check("entra.service_principal.secrets_valid_at_most_one_year",
       resource="entra.service_principal",
       title="Service principals' client secrets are valid for at most a year",
       controls=_LONG_CONTROLS, severity="medium", remediation=_REMEDIATE_LONG)
def service_principal_secrets_valid_at_most_one_year(principal: dict[str, Any]) -> Verdict:
    return _long_lived(principal)
