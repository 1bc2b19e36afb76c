"""The demo's Entra tenant: people, policies, roles and applications with planted gaps, each
beside a well-configured twin; and a tenant of any size for the benchmark."""

from __future__ import annotations

from typing import Any

from collector.demo.emulators.entra import GLOBAL_ADMINISTRATOR, Tenant, days_ago, object_id

DOMAIN = "contoso.example"
ROLES = {
    GLOBAL_ADMINISTRATOR: "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": "Message Center Reader",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
}
CUSTOM_ROLE = object_id("role", "helpdesk-tier-1")
# Microsoft's own tenant, which owns its first-party service principals.
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


def user(name: str, *, member: bool = True, enabled: bool = True, created: float = 700,
         signed_in: float | None = 2, synced: bool = False) -> dict[str, Any]:
    upn = f"{name}@{DOMAIN}" if member else f"{name}_partner.example#EXT#@{DOMAIN}"
    activity = None if signed_in is None else {
        "lastSignInDateTime": days_ago(signed_in),
        "lastSignInRequestId": object_id("signin", name),
        "lastNonInteractiveSignInDateTime": days_ago(signed_in + 1),
        "lastNonInteractiveSignInRequestId": object_id("signin-ni", name),
        "lastSuccessfulSignInDateTime": days_ago(signed_in),
        "lastSuccessfulSignInRequestId": object_id("signin", name)}
    return {
        "id": object_id("user", name), "userPrincipalName": upn,
        "displayName": name.replace(".", " ").title(),
        "mail": f"{name}@{DOMAIN}" if member else f"{name}@partner.example",
        "givenName": name.split(".")[0].title(), "surname": None, "jobTitle": None,
        "accountEnabled": enabled, "userType": "Member" if member else "Guest",
        "createdDateTime": days_ago(created), "onPremisesSyncEnabled": True if synced else None,
        "externalUserState": None if member else "Accepted",
        "creationType": None if member else "Invitation", "signInActivity": activity}


def registration(account: dict[str, Any], *, mfa: bool, admin: bool = False,
                 methods: tuple[str, ...] = ("microsoftAuthenticatorPush",
                                             "softwareOneTimePasscode")) -> dict[str, Any]:
    used = list(methods) if mfa else []
    return {
        "id": account["id"], "userPrincipalName": account["userPrincipalName"],
        "userDisplayName": account["displayName"], "userType": account["userType"].lower(),
        "isAdmin": admin, "isSsprRegistered": mfa, "isSsprEnabled": True, "isSsprCapable": mfa,
        "isMfaRegistered": mfa, "isMfaCapable": mfa, "isPasswordlessCapable": False,
        "methodsRegistered": used, "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": ["push"] if mfa else [],
        "userPreferredMethodForSecondaryAuthentication": "push" if mfa else "none",
        "lastUpdatedDateTime": days_ago(30)}


def role_definitions() -> list[dict[str, Any]]:
    built_in = [{
        "id": template, "templateId": template, "displayName": name,
        "description": f"The built-in {name} role.", "isBuiltIn": True, "isEnabled": True,
        "resourceScopes": ["/"], "version": "1",
        "rolePermissions": [{"allowedResourceActions": [
            "microsoft.directory/allEntities/allProperties/allTasks"
            if template == GLOBAL_ADMINISTRATOR else "microsoft.directory/users/standard/read"],
            "condition": None}]} for template, name in ROLES.items()]
    custom = {
        "id": CUSTOM_ROLE, "templateId": CUSTOM_ROLE, "displayName": "Helpdesk tier 1",
        "description": "Resets passwords of ordinary users.", "isBuiltIn": False,
        "isEnabled": True, "resourceScopes": ["/"], "version": None,
        "rolePermissions": [{"allowedResourceActions": [
            "microsoft.directory/users/password/update"], "condition": None}]}
    return [*built_in, custom]


def assignment(principal: str, role: str, scope: str = "/") -> dict[str, Any]:
    return {"id": object_id("assignment", principal, role).replace("-", "")[:43] + "-1",
            "principalId": principal, "roleDefinitionId": role, "directoryScopeId": scope,
            "resourceScope": scope}


def password(name: str, *, started: float, ends_in: float) -> dict[str, Any]:
    return {"customKeyIdentifier": None, "displayName": name, "endDateTime": days_ago(-ends_in),
            "hint": "Q~x", "keyId": object_id("secret", name), "secretText": None,
            "startDateTime": days_ago(started)}


def certificate(name: str, *, started: float, ends_in: float) -> dict[str, Any]:
    return {"customKeyIdentifier": "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
            "displayName": f"CN={name}", "endDateTime": days_ago(-ends_in),
            "key": None, "keyId": object_id("certificate", name),
            "startDateTime": days_ago(started),
            "type": "AsymmetricX509Cert", "usage": "Verify"}


def application(name: str, *, secrets: list[dict[str, Any]] | None = None,
                certificates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": object_id("application", name), "appId": object_id("app", name),
            "displayName": name, "createdDateTime": days_ago(400),
            "signInAudience": "AzureADMyOrg", "publisherDomain": DOMAIN,
            "passwordCredentials": secrets or [], "keyCredentials": certificates or []}


def service_principal(name: str, owner: str, *, secrets: list[dict[str, Any]] | None = None,
                      certificates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": object_id("service-principal", name), "appId": object_id("app", name),
            "displayName": name, "servicePrincipalType": "Application", "accountEnabled": True,
            "appOwnerOrganizationId": owner, "passwordCredentials": secrets or [],
            "keyCredentials": certificates or []}


def conditional_access(name: str, *, state: str = "enabled", users: dict[str, Any],
                       client_apps: list[str] | None = None,
                       grant: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": object_id("ca", name), "displayName": name, "state": state,
        "createdDateTime": days_ago(200), "modifiedDateTime": days_ago(20),
        "templateId": None,
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": [], "servicePrincipalRiskLevels": [],
            "clientAppTypes": client_apps or ["all"], "platforms": None, "locations": None,
            "devices": None, "clientApplications": None, "authenticationFlows": None,
            "applications": {"includeApplications": ["All"], "excludeApplications": [],
                             "includeUserActions": [],
                             "includeAuthenticationContextClassReferences": []},
            "users": {"includeUsers": [], "excludeUsers": [], "includeGroups": [],
                      "excludeGroups": [], "includeRoles": [], "excludeRoles": [],
                      "includeGuestsOrExternalUsers": None,
                      "excludeGuestsOrExternalUsers": None, **users}},
        "grantControls": {"operator": "OR", "customAuthenticationFactors": [],
                          "termsOfUse": [], "authenticationStrength": None, **grant},
        "sessionControls": None}


def sample_tenant(tenant_id: str) -> tuple[Tenant, dict[str, set[str]]]:
    """The demo tenant and what was planted in it (check id -> the keys that must fail)."""
    people = {
        "alice.admin": user("alice.admin"),
        "bob.admin": user("bob.admin", signed_in=5),
        "break.glass": user("break.glass", signed_in=30),
        "carol.nomfa": user("carol.nomfa"),
        "dave.secadmin": user("dave.secadmin"),
        "erin.dormant": user("erin.dormant", signed_in=200),
        "frank.leaver": user("frank.leaver", enabled=False, signed_in=300),
        "grace.guest": user("grace.guest", member=False, signed_in=10),
        "heidi.new": user("heidi.new", created=10, signed_in=None),
        "ivan.never": user("ivan.never", created=400, signed_in=None),
        "judy.synced": user("judy.synced", synced=True),
        "mallory.guest": user("mallory.guest", member=False, signed_in=20),
        "oscar.staff": user("oscar.staff", signed_in=1),
    }
    unregistered = {"carol.nomfa", "dave.secadmin", "grace.guest", "ivan.never",
                    "mallory.guest"}
    admins = {"alice.admin", "bob.admin", "break.glass", "dave.secadmin", "grace.guest",
              "judy.synced"}
    registrations = [registration(account, mfa=name not in unregistered, admin=name in admins,
                                  methods=("fido2",) if name == "break.glass" else
                                  ("microsoftAuthenticatorPush", "softwareOneTimePasscode"))
                     for name, account in people.items()]
    helpdesk = {"id": object_id("group", "helpdesk"), "displayName": "Helpdesk",
                "securityEnabled": True, "isAssignableToRole": True, "mailEnabled": False}
    automation = service_principal("automation", tenant_id)
    ids = {name: account["id"] for name, account in people.items()}
    assignments = [
        assignment(ids["alice.admin"], GLOBAL_ADMINISTRATOR),
        assignment(ids["bob.admin"], GLOBAL_ADMINISTRATOR),
        assignment(ids["break.glass"], GLOBAL_ADMINISTRATOR),
        assignment(ids["dave.secadmin"], "194ae4cb-b126-40b2-bd5b-6091b380977d"),
        assignment(ids["grace.guest"], "fe930be7-5e62-47db-91af-98c3a49a38b1"),
        assignment(ids["judy.synced"], "29232cdf-9323-42fd-ade2-1d097af3e4de"),
        assignment(ids["mallory.guest"], "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"),
        assignment(automation["id"], "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
        assignment(helpdesk["id"], CUSTOM_ROLE),
    ]
    applications = [
        application("payroll-sync", secrets=[password("payroll", started=30, ends_in=335)],
                    certificates=[certificate("payroll", started=30, ends_in=335)]),
        application("legacy-report", secrets=[password("report", started=375, ends_in=-10)]),
        application("forever-app", secrets=[password("forever", started=100, ends_in=630)]),
        application("cert-app", certificates=[certificate("cert-app", started=400,
                                                          ends_in=-35)]),
        application("no-credentials"),
    ]
    service_principals = [
        automation,
        service_principal("payroll-sync", tenant_id),
        service_principal("saml-portal", tenant_id,
                          certificates=[certificate("saml", started=60, ends_in=300)]),
        service_principal("ops-bot", tenant_id,
                          secrets=[password("ops-bot", started=20, ends_in=160)]),
        service_principal("old-bot", tenant_id,
                          secrets=[password("old-bot", started=200, ends_in=-5)]),
        service_principal("long-bot", tenant_id,
                          secrets=[password("long-bot", started=10, ends_in=1085)]),
        service_principal("Microsoft Graph", MICROSOFT_TENANT),
    ]
    policies = [
        conditional_access(
            "Require MFA for all users",
            users={"includeUsers": ["All"], "excludeUsers": [ids["break.glass"]]},
            grant={"builtInControls": ["mfa"]}),
        conditional_access(
            "Block legacy authentication", state="enabledForReportingButNotEnforced",
            users={"includeUsers": ["All"]}, client_apps=["exchangeActiveSync", "other"],
            grant={"builtInControls": ["block"]}),
        conditional_access(
            "Compliant device for administrators",
            users={"includeRoles": [GLOBAL_ADMINISTRATOR]},
            grant={"builtInControls": ["compliantDevice"]}),
    ]
    tenant = Tenant(
        id=tenant_id, users=list(people.values()), registrations=registrations,
        groups=[helpdesk], conditional_access=policies, role_definitions=role_definitions(),
        role_assignments=assignments, applications=applications,
        service_principals=service_principals, authorization_policy=authorization_policy())
    user_key = {name: f"entra:user:{account['id']}" for name, account in people.items()}
    planted = {
        "entra.user.mfa_registered": {user_key[n] for n in ("carol.nomfa", "dave.secadmin",
                                                            "ivan.never")},
        "entra.user.admin_mfa_registered": {user_key["dave.secadmin"],
                                            user_key["grace.guest"]},
        "entra.user.unused_account_disabled": {user_key["erin.dormant"],
                                               user_key["ivan.never"]},
        "entra.user.admin_cloud_only": {user_key["judy.synced"]},
        "entra.tenant.legacy_authentication_blocked": {f"entra:tenant:{tenant_id}"},
        "entra.role_assignment.no_guest_in_privileged_role": {
            f"entra:role_assignment:{assignments[4]['id']}"},
        "entra.application.secrets_not_expired": {
            f"entra:application:{applications[1]['id']}"},
        "entra.application.secrets_valid_at_most_one_year": {
            f"entra:application:{applications[2]['id']}"},
        "entra.application.certificates_not_expired": {
            f"entra:application:{applications[3]['id']}"},
        "entra.service_principal.secrets_not_expired": {
            f"entra:service_principal:{service_principals[4]['id']}"},
        "entra.service_principal.secrets_valid_at_most_one_year": {
            f"entra:service_principal:{service_principals[5]['id']}"},
        "entra.authorization_policy.users_cannot_register_applications": {
            "entra:policy:authorizationPolicy"},
    }
    return tenant, planted


def authorization_policy() -> dict[str, Any]:
    return {
        "id": "authorizationPolicy", "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "adminsAndGuestInviters", "allowedToSignUpEmailBasedSubscriptions":
            False, "allowedToUseSSPR": True, "allowEmailVerifiedUsersToJoinOrganization": False,
        "allowUserConsentForRiskyApps": False, "blockMsolPowerShell": True,
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "defaultUserRolePermissions": {
            "allowedToCreateApps": True, "allowedToCreateSecurityGroups": False,
            "allowedToCreateTenants": False, "allowedToReadBitlockerKeysForOwnedDevice": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": [
                "ManagePermissionGrantsForSelf.microsoft-user-default-low"]}}


def scale_tenant(tenant_id: str, users: int, applications: int = 200) -> Tenant:
    """A tenant of `users` people (a tenth of them guests, one in twenty without MFA) and
    `applications` app registrations with their service principals, for the benchmark."""
    tenant, _ = sample_tenant(tenant_id)
    people = [user(f"user{i:06d}", member=i % 10 != 0, signed_in=(i * 7) % 200,
                   created=(i * 13) % 900) for i in range(users)]
    tenant.users = people
    tenant.registrations = [registration(account, mfa=i % 20 != 0)
                            for i, account in enumerate(people)]
    tenant.applications = [application(f"app{i:05d}", secrets=[
        password(f"app{i:05d}", started=i % 300, ends_in=365 - i % 300)])
        for i in range(applications)]
    tenant.service_principals = [service_principal(f"app{i:05d}", tenant_id)
                                 for i in range(applications)]
    tenant.role_assignments = [assignment(people[i]["id"], GLOBAL_ADMINISTRATOR)
                               for i in range(1, 4)]
    return tenant
