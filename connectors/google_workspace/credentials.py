"""Credentials of a Workspace source: a service account that impersonates `admin_email`
through domain-wide delegation, from the named key file or Application Default Credentials.

Each Google API gets a token of its own scopes: Google refuses a delegated token outright when
one requested scope is not delegated in the Admin console, so one token for everything would
let a missing Policy API scope sink the Directory evidence too."""

from __future__ import annotations

from google.oauth2 import service_account

from connectors.google_workspace.settings import Settings

DIRECTORY_SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.customer.readonly",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
)
POLICY_SCOPES = ("https://www.googleapis.com/auth/cloud-identity.policies.readonly",)


class CredentialsUnavailable(RuntimeError):
    """No service account to delegate from: nothing of this source can be read."""


def delegated(settings: Settings,
              *scope_sets: tuple[str, ...]) -> list[service_account.Credentials]:
    """Service-account credentials that act as `settings.admin_email`, one per set of scopes.
    The key is read once: loading an RSA key costs a fifth of a second."""
    if settings.credentials_file is not None:
        try:
            base = service_account.Credentials.from_service_account_file(
                str(settings.credentials_file))
        except (ValueError, KeyError) as exc:
            raise CredentialsUnavailable(
                f"{settings.credentials_file}: not a usable service-account key: {exc}") from exc
    else:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            found, _ = google.auth.default()
        except DefaultCredentialsError as exc:
            raise CredentialsUnavailable(f"Application Default Credentials: {exc}") from exc
        if not isinstance(found, service_account.Credentials):
            raise CredentialsUnavailable(
                f"Application Default Credentials are {type(found).__module__}."
                f"{type(found).__name__}, which cannot impersonate {settings.admin_email}: "
                "domain-wide delegation needs a service-account key (set credentials_file or "
                "GOOGLE_APPLICATION_CREDENTIALS)")
        base = found
    return [base.with_scopes(list(scopes)).with_subject(settings.admin_email)
            for scopes in scope_sets]
