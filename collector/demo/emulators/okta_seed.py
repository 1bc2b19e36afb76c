"""The demo's Okta org: people, admin roles, policies, authenticators, apps, API tokens and
network zones with planted gaps, each beside a well-configured twin; and an org of any size for
the benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.demo.emulators.okta import Org, okta_id

DOMAIN = "acme.example"
ORG_ID = okta_id("00o", "acme")
# The emulator listens on 127.0.0.1: the org scope's key is its host.
ORG_KEY = "okta:org:127.0.0.1"


def at(days_ago: float | None, now: datetime | None = None) -> str | None:
    if days_ago is None:
        return None
    moment = (now or datetime.now(UTC)) - timedelta(days=days_ago)
    # Okta writes milliseconds and Z; a day's resolution keeps a re-run's evidence equal.
    return moment.replace(hour=9, minute=0, second=0, microsecond=0).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def user(name: str, *, status: str = "ACTIVE", last_login: float | None = 2,
         activated: float | None = 400) -> dict[str, Any]:
    uid = okta_id("00u", name)
    first, _, last = name.partition(".")
    return {
        "id": uid, "status": status, "created": at(activated + 1 if activated else 500),
        "activated": at(activated), "statusChanged": at(activated),
        "lastLogin": at(last_login), "lastUpdated": at(10), "passwordChanged": at(60),
        "type": {"id": okta_id("oty", "default")},
        "profile": {"firstName": first.title(), "lastName": last.title() or None,
                    "mobilePhone": None, "secondEmail": None, "login": f"{name}@{DOMAIN}",
                    "email": f"{name}@{DOMAIN}"},
        "credentials": {"password": {}, "emails": [{"value": f"{name}@{DOMAIN}",
                                                    "status": "VERIFIED", "type": "PRIMARY"}],
                        "provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"https://acme.okta.com/api/v1/users/{uid}"}}}


def factor(owner: str, kind: str = "push", *, status: str = "ACTIVE") -> dict[str, Any]:
    provider, vendor = {"push": ("OKTA", "OKTA"), "token:software:totp": ("GOOGLE", "GOOGLE"),
                        "sms": ("OKTA", "OKTA"), "webauthn": ("FIDO", "FIDO")}[kind]
    return {"id": okta_id("ufs" if kind != "webauthn" else "fwf", owner, kind),
            "factorType": kind, "provider": provider, "vendorName": vendor, "status": status,
            "created": at(300), "lastUpdated": at(30),
            "profile": {"credentialId": f"{owner}@{DOMAIN}", "deviceType": "SmartPhone_IPhone",
                        "name": f"{owner}'s phone", "platform": "IOS", "version": "17.2"},
            "_links": {}}


def role(owner: str, kind: str, label: str, assignment: str = "USER") -> dict[str, Any]:
    return {"id": okta_id("ra1", owner, kind), "label": label, "type": kind,
            "status": "ACTIVE", "created": at(200), "lastUpdated": at(200),
            "assignmentType": assignment,
            "_links": {"assignee": {"href": f"https://acme.okta.com/api/v1/users/"
                                            f"{okta_id('00u', owner)}"}}}


def policy(kind: str, name: str, *, priority: int, system: bool = False,
           settings: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": okta_id("00p" if kind != "ACCESS_POLICY" else "rst", kind, name),
            "status": "ACTIVE", "name": name, "description": f"{name} ({kind})",
            "priority": priority, "system": system, "type": kind,
            "conditions": {"people": {"groups": {"include": [okta_id("00g", "everyone")]}}},
            "created": at(500), "lastUpdated": at(40),
            **({"settings": settings} if settings is not None else {}),
            "_links": {"rules": {"href": "https://acme.okta.com/api/v1/policies/x/rules"}}}


def sign_on_rule(name: str, *, mfa: bool, idle: int, lifetime: int = 720,
                 access: str = "ALLOW", status: str = "ACTIVE") -> dict[str, Any]:
    return {"id": okta_id("0pr", "signon", name), "status": status, "name": name,
            "priority": 1, "system": False, "type": "SIGN_ON", "created": at(500),
            "lastUpdated": at(40),
            "conditions": {"people": {"users": {"exclude": []}},
                           "network": {"connection": "ANYWHERE"},
                           "authContext": {"authType": "ANY"}},
            "actions": {"signon": {
                "access": access, "requireFactor": mfa, "primaryFactor": "PASSWORD_IDP_ANY_FACTOR",
                **({"factorPromptMode": "ALWAYS", "rememberDeviceByDefault": False} if mfa else {}),
                "session": {"usePersistentCookie": False, "maxSessionIdleMinutes": idle,
                            "maxSessionLifetimeMinutes": lifetime}}}}


def password_settings(*, length: int, history: int, attempts: int) -> dict[str, Any]:
    return {"password": {
        "complexity": {"minLength": length, "minLowerCase": 1, "minUpperCase": 1,
                       "minNumber": 1, "minSymbol": 0, "excludeUsername": True,
                       "dictionary": {"common": {"exclude": True}}, "excludeAttributes": []},
        "age": {"maxAgeDays": 0, "expireWarnDays": 0, "minAgeMinutes": 0,
                "historyCount": history},
        "lockout": {"maxAttempts": attempts, "autoUnlockMinutes": 0,
                    "userLockoutNotificationChannels": [], "showLockoutFailures": False}},
        "recovery": {"factors": {"recovery_question": {"status": "INACTIVE"},
                                 "okta_email": {"status": "ACTIVE"}}},
        "delegation": {"options": {"skipUnlock": False}}}


def password_rule(name: str) -> dict[str, Any]:
    return {"id": okta_id("0pr", "password", name), "status": "ACTIVE", "name": name,
            "priority": 1, "system": True, "type": "PASSWORD", "created": at(500),
            "lastUpdated": at(40), "conditions": {"people": {"users": {"exclude": []}},
                                                  "network": {"connection": "ANYWHERE"}},
            "actions": {"passwordChange": {"access": "ALLOW"},
                        "selfServicePasswordReset": {"access": "ALLOW"},
                        "selfServiceUnlock": {"access": "DENY"}}}


def enrolment_settings(verify: str) -> dict[str, Any]:
    return {"type": "AUTHENTICATORS", "authenticators": [
        {"key": "okta_password", "enroll": {"self": "REQUIRED"}},
        {"key": "okta_verify", "enroll": {"self": verify}},
        {"key": "webauthn", "enroll": {"self": "OPTIONAL"}}]}


def enrolment_rule(name: str) -> dict[str, Any]:
    return {"id": okta_id("0pr", "enroll", name), "status": "ACTIVE", "name": name,
            "priority": 1, "system": False, "type": "MFA_ENROLL", "created": at(500),
            "lastUpdated": at(40), "conditions": {"people": {"users": {"exclude": []}},
                                                  "network": {"connection": "ANYWHERE"}},
            "actions": {"enroll": {"self": "CHALLENGE"}}}


def access_rule(name: str, factor_mode: str, *, access: str = "ALLOW") -> dict[str, Any]:
    return {"id": okta_id("rul", "access", name), "status": "ACTIVE", "name": name,
            "priority": 0, "system": False, "type": "ACCESS_POLICY", "created": at(500),
            "lastUpdated": at(40), "conditions": None,
            "actions": {"appSignOn": {"access": access, "verificationMethod": {
                "factorMode": factor_mode, "type": "ASSURANCE", "reauthenticateIn": "PT2H",
                "constraints": [{"knowledge": {"types": ["password"]}}]}}}}


def authenticator(key: str, name: str, kind: str, *, status: str = "ACTIVE") -> dict[str, Any]:
    return {"id": okta_id("aut", key), "key": key, "status": status, "type": kind,
            "name": name, "created": at(600), "lastUpdated": at(50), "settings": {},
            "_links": {}}


def app(name: str, label: str, mode: str) -> dict[str, Any]:
    return {"id": okta_id("0oa", name), "name": name, "label": label, "status": "ACTIVE",
            "created": at(300), "lastUpdated": at(20), "signOnMode": mode,
            "accessibility": {"selfService": False, "errorRedirectUrl": None},
            "visibility": {"autoSubmitToolbar": False, "hide": {"iOS": False, "web": False}},
            "features": [], "settings": {"app": {}},
            "_links": {"accessPolicy": {"href": "https://acme.okta.com/api/v1/policies/"
                                                f"{okta_id('rst', 'ACCESS_POLICY', 'Default')}"}}}


def api_token(name: str, owner: str, network: dict[str, Any]) -> dict[str, Any]:
    return {"id": okta_id("00T", name), "name": name, "userId": okta_id("00u", owner),
            "clientName": "Okta API", "tokenWindow": "P30D", "network": network,
            "created": at(120), "lastUpdated": at(1), "expiresAt": at(-29),
            "_link": {"self": {"href": "https://acme.okta.com/api/v1/api-tokens/x"}}}


def ip_zone(name: str, cidrs: list[str], usage: str = "POLICY") -> dict[str, Any]:
    return {"type": "IP", "id": okta_id("nzo", name), "name": name, "status": "ACTIVE",
            "usage": usage, "system": False, "created": at(400), "lastUpdated": at(30),
            "gateways": [{"type": "CIDR", "value": cidr} for cidr in cidrs], "proxies": None,
            "_links": {}}


def sample_org() -> tuple[Org, dict[str, set[str]]]:
    """The demo org and what was planted in it (check id -> the keys that must fail)."""
    people = {
        "alice.admin": user("alice.admin"),
        "bob.orgadmin": user("bob.orgadmin", last_login=5),
        "carol.nomfa": user("carol.nomfa"),
        "dave.pending": user("dave.pending"),
        "erin.dormant": user("erin.dormant", last_login=200),
        "frank.leaver": user("frank.leaver", status="DEPROVISIONED", last_login=300),
        "grace.suspended": user("grace.suspended", status="SUSPENDED", last_login=120),
        "heidi.new": user("heidi.new", last_login=None, activated=10),
        "ivan.never": user("ivan.never", last_login=None, activated=400),
        "judy.reader": user("judy.reader", last_login=1),
        "oscar.staff": user("oscar.staff", status="PASSWORD_EXPIRED", last_login=20),
        "peggy.staged": user("peggy.staged", status="STAGED", last_login=None, activated=None),
    }
    ids = {name: account["id"] for name, account in people.items()}
    factors = {ids[name]: [factor(name), factor(name, "token:software:totp")]
               for name in people if name not in ("carol.nomfa", "dave.pending",
                                                  "peggy.staged", "frank.leaver")}
    factors[ids["judy.reader"]] = [factor("judy.reader", "webauthn")]
    factors[ids["dave.pending"]] = [factor("dave.pending", status="PENDING_ACTIVATION")]
    roles = {
        ids["alice.admin"]: [role("alice.admin", "SUPER_ADMIN", "Super Administrator")],
        ids["bob.orgadmin"]: [role("bob.orgadmin", "ORG_ADMIN", "Organization Administrator")],
        ids["dave.pending"]: [role("dave.pending", "APP_ADMIN", "Application Administrator")],
        ids["judy.reader"]: [role("judy.reader", "READ_ONLY_ADMIN",
                                  "Read Only Administrator", "GROUP")],
    }
    sign_on = [policy("OKTA_SIGN_ON", "Default Policy", priority=3, system=True),
               policy("OKTA_SIGN_ON", "Administrators", priority=1),
               policy("OKTA_SIGN_ON", "Contractors", priority=2)]
    passwords = [policy("PASSWORD", "Default Policy", priority=2, system=True,
                        settings=password_settings(length=8, history=0, attempts=0)),
                 policy("PASSWORD", "Staff", priority=1,
                        settings=password_settings(length=14, history=24, attempts=5))]
    enrolments = [policy("MFA_ENROLL", "Default Policy", priority=2, system=True,
                         settings=enrolment_settings("OPTIONAL")),
                  policy("MFA_ENROLL", "Staff enrolment", priority=1,
                         settings=enrolment_settings("REQUIRED"))]
    access = [policy("ACCESS_POLICY", "Default Policy", priority=1, system=True),
              policy("ACCESS_POLICY", "Okta Admin Console", priority=1)]
    rules = {
        sign_on[0]["id"]: [sign_on_rule("Default Rule", mfa=False, idle=120)],
        sign_on[1]["id"]: [sign_on_rule("Admins MFA", mfa=True, idle=15, lifetime=240),
                           sign_on_rule("Deny off-network", mfa=False, idle=120,
                                        access="DENY")],
        sign_on[2]["id"]: [sign_on_rule("Contractors MFA", mfa=True, idle=720,
                                        lifetime=0)],
        passwords[0]["id"]: [password_rule("Default Rule")],
        passwords[1]["id"]: [password_rule("Staff rule")],
        enrolments[0]["id"]: [enrolment_rule("Default Rule")],
        enrolments[1]["id"]: [enrolment_rule("Staff rule")],
        access[0]["id"]: [access_rule("Catch-all Rule", "1FA")],
        access[1]["id"]: [access_rule("Admin Console MFA", "2FA"),
                          access_rule("Catch-all Rule", "2FA", access="DENY")],
    }
    authenticators = [
        authenticator("okta_password", "Password", "password"),
        authenticator("okta_verify", "Okta Verify", "app"),
        authenticator("webauthn", "Security Key or Biometric", "security_key"),
        authenticator("okta_email", "Email", "email"),
        authenticator("phone_number", "Phone", "phone"),
        authenticator("security_question", "Security Question", "security_question",
                      status="INACTIVE"),
    ]
    zones = [ip_zone("Office", ["203.0.113.0/24", "198.51.100.7/32"]),
             ip_zone("Anywhere", ["0.0.0.0/0"]),
             ip_zone("BlockedIpZone", [], usage="BLOCKLIST")]
    tokens = [api_token("terraform", "alice.admin", {"connection": "ANYWHERE"}),
              api_token("siem-export", "judy.reader",
                        {"connection": "ZONE", "include": [zones[0]["id"]]}),
              api_token("legacy-sync", "bob.orgadmin",
                        {"connection": "ZONE", "exclude": [zones[2]["id"]]})]
    apps = [app("salesforce", "Salesforce", "SAML_2_0"),
            app("github_enterprise", "GitHub Enterprise", "SAML_2_0"),
            app("oidc_client", "Annexa", "OPENID_CONNECT")]
    org = Org(id=ORG_ID, users=list(people.values()), factors=factors, roles=roles,
              policies={"OKTA_SIGN_ON": sign_on, "PASSWORD": passwords,
                        "MFA_ENROLL": enrolments, "ACCESS_POLICY": access},
              rules=rules, authenticators=authenticators, apps=apps, api_tokens=tokens,
              zones=zones)
    user_key = {name: f"okta:user:{uid}" for name, uid in ids.items()}
    planted = {
        "okta.user.mfa_enrolled": {user_key["carol.nomfa"], user_key["dave.pending"]},
        "okta.user.admin_mfa_enrolled": {user_key["dave.pending"]},
        "okta.user.inactive_deactivated": {user_key["erin.dormant"], user_key["ivan.never"]},
        "okta.policy.password_strong": {f"okta:policy:{passwords[0]['id']}"},
        "okta.policy.sign_on_requires_mfa": {f"okta:policy:{sign_on[0]['id']}"},
        "okta.policy.session_idle_bounded": {f"okta:policy:{sign_on[2]['id']}"},
        "okta.policy.authentication_requires_mfa": {f"okta:policy:{access[0]['id']}"},
        "okta.policy.mfa_enrollment_required": {f"okta:policy:{enrolments[0]['id']}"},
        "okta.authenticator.weak_authenticators_inactive": {
            f"okta:authenticator:{authenticators[4]['id']}"},
        "okta.api_token.network_restricted": {f"okta:api_token:{tokens[0]['id']}",
                                              f"okta:api_token:{tokens[2]['id']}"},
        "okta.zone.not_whole_internet": {f"okta:zone:{zones[1]['id']}"},
        "okta.org.super_admins_between_2_and_4": {ORG_KEY},
    }
    return org, planted


def scale_org(users: int) -> Org:
    """An org of `users` people (one in twenty without a factor, one in fifty deprovisioned)
    and the demo org's admins, policies and the rest, for the benchmark."""
    org, _ = sample_org()
    people = [user(f"user{i:06d}", status="DEPROVISIONED" if i % 50 == 0 else "ACTIVE",
                   last_login=(i * 7) % 200) for i in range(users)]
    org.users = people
    org.factors = {u["id"]: [factor(u["id"])] for i, u in enumerate(people) if i % 20 != 0}
    org.roles = {people[i]["id"]: [role(f"user{i:06d}", "SUPER_ADMIN", "Super Administrator")]
                 for i in range(1, 4)}
    return org
