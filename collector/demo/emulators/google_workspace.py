"""Google Workspace as the Admin SDK Directory API v1 and the Cloud Identity Policy API serve it:
the real paths, query parameters (maxResults, pageToken, fields, filter), page and error bodies,
and Google's ways of saying "slow down". Calls carry a token that google-auth obtained from the
fake token service (google_login) by domain-wide delegation; each route wants its own scope and
an administrator behind the token, as Google does.

Customers are seeded from Python data (Tenant, Person, Setting); `start_demo` serves a sample
customer with planted gaps beside their well-configured twins."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from collector.demo.emulators import DemoSource, google_login
from collector.demo.emulators.server import FakeApi, ca_file, json_response, page_of

SCOPE = "https://www.googleapis.com/auth/"
NEVER = "1970-01-01T00:00:00.000Z"  # the Directory API's lastLoginTime of one who never signed in
SUPER_ADMIN_ROLE = "_SEED_ADMIN_ROLE"
DELEGATED_ROLE = "_HELP_DESK_ADMIN_ROLE"
SYSTEM_ROLES = ((SUPER_ADMIN_ROLE, "Super Admin"), ("_GROUPS_ADMIN_ROLE", "Groups Administrator"),
                ("_USER_MANAGEMENT_ADMIN_ROLE", "User Management Administrator"),
                (DELEGATED_ROLE, "Help Desk Administrator"),
                ("_SERVICES_ADMIN_ROLE", "Services Administrator"))


# --- seeds -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """A user. `enforced` is what Google computes from the 2SV enforcement policy in force for
    the user; `last_login_days` None means never signed in."""

    name: str
    ou: str = "/"
    super_admin: bool = False
    delegated_admin: bool = False
    enrolled: bool = True
    enforced: bool = True
    suspended: bool = False
    archived: bool = False
    last_login_days: int | None = 2
    created_days: int = 400


@dataclass(frozen=True)
class Setting:
    """A policy: a value of one setting type (without `settings/`) set on an org unit, or for
    the members of a group."""

    ou: str
    type: str
    value: dict[str, Any]
    group: str | None = None
    system: bool = False


@dataclass(frozen=True)
class Tenant:
    id: str
    domain: str
    name: str
    org_units: tuple[str, ...]  # paths below "/"
    people: tuple[Person, ...]
    settings: tuple[Setting, ...] = ()


def _digits(*parts: str, length: int = 21) -> str:
    number = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    return str(10 ** (length - 1) + number % (9 * 10 ** (length - 1)))


def _alnum(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _when(now: datetime, days_ago: int) -> str:
    return (now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _etag(item: Any) -> str:
    return f'"{_alnum(json.dumps(item, sort_keys=True), length=27)}"'


@dataclass
class Customer:
    """One customer's state, as the APIs return it."""

    id: str
    domain: str
    org_units: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    by_email: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        return {"kind": "admin#directory#customer", "id": self.id,
                "etag": _etag(self.id), "customerDomain": self.domain,
                "alternateEmail": f"it@{self.domain}", "language": "en",
                "customerCreationTime": "2019-03-04T10:11:12.000Z",
                "postalAddress": {"organizationName": self.domain, "countryCode": "GB"}}

    def org_unit(self, path: str) -> dict[str, Any]:
        return next(unit for unit in self.org_units if unit["orgUnitPath"] == path)


def build(tenant: Tenant, now: datetime | None = None) -> Customer:
    now = now or datetime.now(UTC)
    customer = Customer(tenant.id, tenant.domain)
    for path in ("/", *tenant.org_units):
        parent = path.rsplit("/", 1)[0] or "/"
        unit: dict[str, Any] = {
            "kind": "admin#directory#orgUnit", "name": tenant.name if path == "/" else
            path.rsplit("/", 1)[1], "description": "", "orgUnitPath": path,
            "orgUnitId": f"id:03ph8a2z{_alnum(tenant.id, path, length=7)}",
            "blockInheritance": False}
        if path != "/":
            unit.update(parentOrgUnitPath=parent,
                        parentOrgUnitId=customer.org_unit(parent)["orgUnitId"])
        unit["etag"] = _etag(unit)
        customer.org_units.append(unit)
    for role_name, description in SYSTEM_ROLES:
        role = {"kind": "admin#directory#role", "roleId": _digits(tenant.id, role_name, length=17),
                "roleName": role_name, "roleDescription": description,
                "rolePrivileges": [{"privilegeName": "SUPER_ADMIN" if role_name ==
                                    SUPER_ADMIN_ROLE else "USERS_RETRIEVE",
                                    "serviceId": "00haapch16h1ysv"}],
                "isSystemRole": True, "isSuperAdminRole": role_name == SUPER_ADMIN_ROLE}
        role["etag"] = _etag(role)
        customer.roles.append(role)
    for person in tenant.people:
        _add_person(customer, person, now)
    for number, setting in enumerate(tenant.settings):
        _add_policy(customer, tenant, setting, number)
    return customer


def _add_person(customer: Customer, person: Person, now: datetime) -> None:
    email = f"{person.name}@{customer.domain}"
    user: dict[str, Any] = {
        "kind": "admin#directory#user", "id": _digits(email), "primaryEmail": email,
        "name": {"givenName": person.name.title(), "familyName": "Example",
                 "fullName": f"{person.name.title()} Example"},
        "isAdmin": person.super_admin, "isDelegatedAdmin": person.delegated_admin,
        "lastLoginTime": NEVER if person.last_login_days is None else
        _when(now, person.last_login_days),
        "creationTime": _when(now, person.created_days), "agreedToTerms": True,
        "suspended": person.suspended, "archived": person.archived,
        "changePasswordAtNextLogin": False, "ipWhitelisted": False,
        "emails": [{"address": email, "primary": True}],
        "phones": [{"value": "+44 20 7946 0000", "type": "work"}],
        "customerId": customer.id, "orgUnitPath": person.ou, "isMailboxSetup": True,
        "isEnrolledIn2Sv": person.enrolled, "isEnforcedIn2Sv": person.enforced,
        "includeInGlobalAddressList": True}
    if person.suspended:
        user["suspensionReason"] = "ADMIN"
    user["etag"] = _etag(user)
    customer.users.append(user)
    customer.by_email[email] = user
    for role_name, holds in ((SUPER_ADMIN_ROLE, person.super_admin),
                             (DELEGATED_ROLE, person.delegated_admin)):
        if holds:
            role = next(r for r in customer.roles if r["roleName"] == role_name)
            assignment = {"kind": "admin#directory#roleAssignment",
                          "roleAssignmentId": _digits(email, role_name, length=17),
                          "roleId": role["roleId"], "assignedTo": user["id"],
                          "assigneeType": "user", "scopeType": "CUSTOMER"}
            assignment["etag"] = _etag(assignment)
            customer.role_assignments.append(assignment)


def _add_policy(customer: Customer, tenant: Tenant, setting: Setting, number: int) -> None:
    unit_id = customer.org_unit(setting.ou)["orgUnitId"].removeprefix("id:")
    query: dict[str, Any] = {
        "query": f"entity.org_units.exists(org_unit, org_unit.org_unit_id == "
                 f"orgUnitId('{unit_id}'))", "orgUnit": f"orgUnits/{unit_id}",
        # Deeper org units and then groups win (the Max reducer takes the greatest).
        "sortOrder": 1 + setting.ou.count("/") - (setting.ou == "/")}
    if setting.group:
        group_id = _alnum(tenant.id, setting.group, length=15)
        query.update(query=f"entity.groups.exists(group, group.group_id == groupId("
                           f"'{group_id}'))", group=f"groups/{group_id}",
                     sortOrder=100 + number)
    if setting.system:
        query["sortOrder"] = 101.00049
    customer.policies.append({
        "name": f"policies/{_alnum(tenant.id, str(number), setting.type, length=26)}",
        "customer": f"customers/{customer.id}", "policyQuery": query,
        "setting": {"type": f"settings/{setting.type}", "value": setting.value},
        "type": "SYSTEM" if setting.system else "ADMIN"})


# --- error answers ---------------------------------------------------------------------------

def google_error(code: int, message: str, *, reason: str | None = None,
                 domain: str = "global", status: str | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if reason:
        error["errors"] = [{"message": message, "domain": domain, "reason": reason}]
    if status:
        error["status"] = status
    return json_response({"error": error}, code, headers)


def quota_403(_request: Request | None = None, reason: str = "userRateLimitExceeded"
              ) -> Response:
    """The Admin SDK's rate limit: a 403 without Retry-After."""
    return google_error(403, "Quota exceeded for quota metric 'Queries' and limit 'Queries per "
                             "minute per user' of service 'admin.googleapis.com' for consumer "
                             "'project_number:123456789012'.",
                        reason=reason, domain="usageLimits", status="PERMISSION_DENIED")


def exhausted_429(_request: Request | None = None) -> Response:
    body = {"error": {
        "code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "Quota exceeded for quota metric 'Read requests' and limit 'Read requests "
                   "per minute' of service 'cloudidentity.googleapis.com' for consumer "
                   "'project_number:123456789012'.",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}]}}
    return json_response(body, 429)


def backend_500(_request: Request | None = None) -> Response:
    return google_error(500, "Internal error encountered.", reason="backendError",
                        status="INTERNAL")


def forbidden_403(_request: Request | None = None) -> Response:
    """A denial: the admin lacks the privilege (the Directory API's words)."""
    return google_error(403, "Not Authorized to access this resource/api", reason="forbidden")


def permission_denied_403(_request: Request | None = None) -> Response:
    """A denial in the Cloud Identity API's words."""
    return google_error(403, "The caller does not have permission", status="PERMISSION_DENIED")


def unauthenticated_401(_request: Request | None = None) -> Response:
    return google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 "
                             "access token, login cookie or other valid authentication "
                             "credential.", reason="authError", status="UNAUTHENTICATED")


def _invalid(what: str) -> Response:
    return google_error(400, f"Invalid Input: {what}", reason="invalid")


# --- partial responses (the `fields` parameter) ----------------------------------------------

Selection = dict[str, "Selection | None"]
_FIELD_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*|[(),])")


def parse_fields(spec: str) -> Selection:
    """Google's partial-response syntax: `a,b(c,d),e/f`."""
    tokens = _FIELD_TOKEN.findall(spec)
    if "".join(tokens) != re.sub(r"\s", "", spec):
        raise ValueError(spec)
    selection, rest = _selection(tokens)
    if rest:
        raise ValueError(spec)
    return selection


def _selection(tokens: list[str]) -> tuple[Selection, list[str]]:
    out: Selection = {}
    while tokens and tokens[0] not in ",)":
        path, tokens = tokens[0].split("/"), tokens[1:]
        inner: Selection | None = None
        if tokens and tokens[0] == "(":
            inner, tokens = _selection(tokens[1:])
            if not tokens or tokens[0] != ")":
                raise ValueError("unbalanced parentheses")
            tokens = tokens[1:]
        node = out
        for name in path[:-1]:
            node = node.setdefault(name, {}) or {}
        node[path[-1]] = inner
        if tokens and tokens[0] == ",":
            tokens = tokens[1:]
    return out, tokens


def select(value: Any, selection: Selection | None) -> Any:
    if selection is None:
        return value
    if isinstance(value, list):
        return [select(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    return {name: select(value[name], inner) for name, inner in selection.items()
            if name in value}


# --- the routes ------------------------------------------------------------------------------

@dataclass
class Workspace:
    """The customers a fake serves and the token service its tokens come from."""

    api: FakeApi
    accounts: google_login.Accounts
    customers: dict[str, Customer] = field(default_factory=dict)
    token_url: str = ""

    def add(self, tenant: Tenant, now: datetime | None = None) -> Customer:
        customer = build(tenant, now)
        self.customers[customer.id] = customer
        return customer

    def reset(self) -> None:
        self.customers.clear()
        self.api.heal()
        self.api.reset_calls()
        self.accounts.tokens.revoke_all()
        self.accounts.token_requests = 0

    def admin_of(self, email: str) -> tuple[Customer, dict[str, Any]] | None:
        for customer in self.customers.values():
            if email in customer.by_email:
                return customer, customer.by_email[email]
        return None

    def key_file(self, path: Path, admin_email: str, *,
                 scopes: Iterable[str] | None = None) -> Path:
        """A new service-account key that may impersonate `admin_email` (with `scopes` only,
        if given), written to `path`."""
        email = f"annexa-{_alnum(str(path), length=6)}@annexa-demo.iam.gserviceaccount.com"
        key = self.accounts.service_account(email, self.token_url,
                                            may_impersonate={admin_email})
        if scopes is not None:
            self.accounts.delegated_scopes[email] = set(scopes)
        path.write_text(json.dumps(key))
        return path


Guarded = Callable[..., Any]


def install(api: FakeApi, accounts: google_login.Accounts) -> Workspace:
    workspace = Workspace(api, accounts)
    api.data["workspace"] = workspace
    workspace.token_url = google_login.install(api, accounts)
    audiences = ["https://admin.googleapis.com/", "https://cloudidentity.googleapis.com/"]

    def authorized(request: Request, scope: str, *, super_admin: bool,
                   customer: str | None) -> Customer | Response:
        """The customer that the token's admin may read, or the answer Google gives."""
        problem, grant = google_login.bearer(request, accounts, audiences)
        if problem:
            return unauthenticated_401()
        scopes = grant.get("scopes") or set()
        if SCOPE + scope not in scopes and SCOPE + scope.removesuffix(".readonly") not in scopes:
            return google_error(403, "Request had insufficient authentication scopes.",
                                reason="insufficientPermissions", status="PERMISSION_DENIED")
        found = workspace.admin_of(str(grant.get("subject")))
        admin = found[1] if found else {}
        if not admin.get("isAdmin") and (super_admin or not admin.get("isDelegatedAdmin")):
            return permission_denied_403() if super_admin else forbidden_403()
        assert found is not None
        if customer not in (None, "my_customer", found[0].id):
            return permission_denied_403() if super_admin else forbidden_403()
        return found[0]

    def guarded(scope: str, super_admin: bool = False) -> Callable[[Guarded], Guarded]:
        def wrap(handler: Guarded) -> Guarded:
            def answer(request: Request, **path: str) -> Any:
                customer = authorized(request, scope, super_admin=super_admin,
                                      customer=path.get("customer",
                                                        request.args.get("customer")))
                if isinstance(customer, Response):
                    return customer
                try:
                    fields = parse_fields(request.args["fields"]) if "fields" in request.args \
                        else None
                except ValueError:
                    return _invalid("Invalid field selection")
                result = handler(request, customer)
                return result if isinstance(result, Response) else select(result, fields)
            return answer
        return wrap

    def page(request: Request, items: list[dict[str, Any]], size_param: str, most: int,
             ) -> tuple[list[dict[str, Any]], str | None] | Response:
        try:
            asked = int(request.args.get(size_param, most))
        except ValueError:
            return _invalid(size_param)
        if not 1 <= asked <= most:
            return _invalid(size_param)
        try:
            return page_of(items, request.args.get("pageToken"), min(asked, api.page_size))
        except ValueError:
            return _invalid("pageToken")

    def listing(kind: str, name: str, items: list[dict[str, Any]], request: Request,
                size_param: str, most: int) -> Any:
        answer = page(request, items, size_param, most)
        if isinstance(answer, Response):
            return answer
        chunk, token = answer
        body: dict[str, Any] = {"kind": kind, "etag": _etag([i.get("etag") for i in chunk])}
        if chunk:
            body[name] = chunk
        if token:
            body["nextPageToken"] = token
        return body

    base = "/admin/directory/v1"

    @api.route("GET", f"{base}/customers/(?P<customer>[^/]+)", name="customers.get")
    @guarded("admin.directory.customer.readonly")
    def customers_get(request: Request, customer: Customer) -> Any:
        return customer.record

    @api.route("GET", f"{base}/users", name="users.list")
    @guarded("admin.directory.user.readonly")
    def users_list(request: Request, customer: Customer) -> Any:
        if "customer" not in request.args and "domain" not in request.args:
            return google_error(400, "Bad Request", reason="badRequest")
        return listing("admin#directory#users", "users", customer.users, request,
                       "maxResults", 500)

    @api.route("GET", f"{base}/customer/(?P<customer>[^/]+)/orgunits", name="orgunits.list")
    @guarded("admin.directory.orgunit.readonly")
    def orgunits_list(request: Request, customer: Customer) -> Any:
        kind = request.args.get("type", "children")
        start = request.args.get("orgUnitPath", "/").rstrip("/") or "/"
        prefix = "/" if start == "/" else start + "/"
        below = [u for u in customer.org_units
                 if u["orgUnitPath"] != start and u["orgUnitPath"].startswith(prefix)]
        if kind == "children":
            below = [u for u in below if u.get("parentOrgUnitPath") == start]
        elif kind == "allIncludingParent":
            below = [u for u in customer.org_units if u["orgUnitPath"] == start] + below
        elif kind != "all":
            return _invalid("type")
        return {"kind": "admin#directory#orgUnits", "etag": _etag(len(below)),
                "organizationUnits": below}

    @api.route("GET", f"{base}/customer/(?P<customer>[^/]+)/roles", name="roles.list")
    @guarded("admin.directory.rolemanagement.readonly")
    def roles_list(request: Request, customer: Customer) -> Any:
        return listing("admin#directory#roles", "items", customer.roles, request,
                       "maxResults", 100)

    @api.route("GET", f"{base}/customer/(?P<customer>[^/]+)/roleassignments",
               name="roleAssignments.list")
    @guarded("admin.directory.rolemanagement.readonly")
    def role_assignments_list(request: Request, customer: Customer) -> Any:
        items = customer.role_assignments
        if request.args.get("roleId"):
            items = [a for a in items if a["roleId"] == request.args["roleId"]]
        return listing("admin#directory#roleAssignments", "items", items, request,
                       "maxResults", 200)

    @api.route("GET", "/v1/policies", name="policies.list")
    @guarded("cloud-identity.policies.readonly", super_admin=True)
    def policies_list(request: Request, customer: Customer) -> Any:
        try:
            wanted, pattern = _policy_filter(request.args.get("filter", ""))
        except ValueError as exc:
            return google_error(400, f"Invalid filter: {exc}", status="INVALID_ARGUMENT")
        if wanted not in ("my_customer", customer.id):
            return permission_denied_403()
        chosen = [p for p in customer.policies
                  if pattern is None or pattern.search(p["setting"]["type"])]
        size = min(max(int(request.args.get("pageSize") or 50), 1), 100)
        try:
            chunk, token = page_of(chosen, request.args.get("pageToken"),
                                   min(size, api.page_size))
        except ValueError:
            return google_error(400, "Invalid page token", status="INVALID_ARGUMENT")
        return {"policies": chunk, **({"nextPageToken": token} if token else {})}

    return workspace


_CUSTOMER_CLAUSE = re.compile(r'^customer\s*==\s*"customers/([^"]+)"$')
_TYPE_CLAUSE = re.compile(r"^setting\.type\.matches\('((?:[^'\\]|\\.)*)'\)$")


def _policy_filter(text: str) -> tuple[str, re.Pattern[str] | None]:
    """The two clauses of policies.list's CEL filter that Google documents, joined by &&."""
    customer, pattern = "my_customer", None
    for clause in filter(None, (c.strip() for c in text.split("&&"))):
        if match := _CUSTOMER_CLAUSE.match(clause):
            customer = match.group(1)
        elif match := _TYPE_CLAUSE.match(clause):
            pattern = re.compile(re.sub(r"\\(.)", r"\1", match.group(1)))
        else:
            raise ValueError(f"unsupported clause {clause!r}")
    return customer, pattern


# --- the demo's sample customers -------------------------------------------------------------

ENFORCED = {"enforcedFrom": "2023-01-09T08:00:00Z"}
NOT_ENFORCED = {"enforcedFrom": "1970-01-01T00:00:00Z"}
STRONG_PASSWORDS = {"allowedStrength": "STRONG", "minimumLength": 14, "maximumLength": 100,
                    "enforceRequirementsAtLogin": True, "allowReuse": False,
                    "expirationDuration": "0s"}

GAPS = Tenant(
    id="C01gaps9x", domain="example.com", name="Example Co",
    org_units=("/Engineering", "/Sales", "/Contractors", "/Lab"),
    people=(
        Person("ada", super_admin=True),
        Person("carol", "/Engineering", delegated_admin=True, enrolled=False),
        Person("dave", "/Engineering"),
        Person("erin", "/Sales", enrolled=False, enforced=False),
        Person("sam", "/Sales", enforced=False),
        Person("frank", "/Engineering", last_login_days=200),
        Person("grace", "/Contractors", enrolled=False, last_login_days=None, created_days=120),
        Person("heidi", "/Contractors", enrolled=False, last_login_days=None, created_days=10),
        Person("ivan", enrolled=False, suspended=True, last_login_days=300),
        Person("judy", "/Engineering", archived=True, last_login_days=150),
    ),
    settings=(
        Setting("/", "security.two_step_verification_enforcement", ENFORCED),
        # Scheduled, not yet in force: Sales signs in with passwords alone until then.
        Setting("/Sales", "security.two_step_verification_enforcement",
                {"enforcedFrom": "2099-01-01T00:00:00Z"}),
        # Not enforced where nobody signs in: no gap.
        Setting("/Lab", "security.two_step_verification_enforcement", NOT_ENFORCED),
        Setting("/", "security.two_step_verification_enrollment", {"allowEnrollment": True},
                system=True),
        Setting("/", "security.password", STRONG_PASSWORDS),
        Setting("/Contractors", "security.password",
                {**STRONG_PASSWORDS, "allowedStrength": "WEAK", "minimumLength": 8,
                 "allowReuse": True}),
        Setting("/Sales", "security.less_secure_apps", {"allowLessSecureApps": True}),
        Setting("/", "security.super_admin_account_recovery", {"enableAccountRecovery": True}),
    ),
)

TWIN = Tenant(
    id="C02twin7y", domain="example.org", name="Example Twin",
    org_units=("/Engineering", "/Sales", "/Lab"),
    people=(
        Person("alice", super_admin=True),
        Person("bob", "/Engineering", super_admin=True),
        Person("carl", "/Engineering", delegated_admin=True),
        Person("dina", "/Sales"),
        Person("eve", "/Sales", last_login_days=30),
        Person("gus", "/Engineering", enrolled=False, suspended=True, last_login_days=400),
    ),
    settings=(
        Setting("/", "security.two_step_verification_enforcement", ENFORCED),
        Setting("/Lab", "security.two_step_verification_enforcement", NOT_ENFORCED),
        Setting("/", "security.two_step_verification_enforcement", ENFORCED,
                group="finance-team"),
        Setting("/", "security.password", STRONG_PASSWORDS),
        Setting("/", "security.less_secure_apps", {"allowLessSecureApps": False}),
        Setting("/", "security.super_admin_account_recovery",
                {"enableAccountRecovery": False}),
    ),
)


def user_key(tenant: Tenant, name: str) -> str:
    return f"google_workspace:user:{_digits(f'{name}@{tenant.domain}')}"


def customer_key(tenant: Tenant) -> str:
    return f"google_workspace:customer:{tenant.id}"


def planted(tenant: Tenant = GAPS) -> dict[str, set[str]]:
    """Check id -> the keys of GAPS that must fail it (TWIN plants nothing)."""
    if tenant is not GAPS:
        return {}

    def users(*names: str) -> set[str]:
        return {user_key(GAPS, name) for name in names}

    scope = {customer_key(GAPS)}
    return {
        "google_workspace.user_2sv_enrolled": users("carol", "erin", "grace", "heidi"),
        "google_workspace.admin_2sv_enrolled": users("carol"),
        "google_workspace.user_2sv_enforced": users("erin", "sam"),
        "google_workspace.inactive_user_suspended": users("frank", "grace"),
        "google_workspace.super_admin_count_between_2_and_4": scope,
        "google_workspace.two_step_verification_enforced": scope,
        "google_workspace.password_policy_strong": scope,
        "google_workspace.less_secure_apps_disabled": scope,
        "google_workspace.super_admin_account_recovery_disabled": scope,
    }


def start_demo(workdir: Path) -> DemoSource:
    """The Example Co customer on loopback, its key file in `workdir`."""
    api = FakeApi("google_workspace").start()
    workspace = install(api, google_login.Accounts())
    workspace.add(GAPS)
    admin = f"ada@{GAPS.domain}"
    key = workspace.key_file(Path(workdir) / "workspace-demo-sa.json", admin)
    source = {"name": "workspace-demo", "kind": "google_workspace", "schedule": "15m",
              "customer": "my_customer", "admin_email": admin, "credentials_file": str(key),
              "api_endpoint": api.url, "ca_bundle": str(ca_file())}
    return DemoSource(source=source, planted=planted(GAPS), stop=api.stop)
