"""Google Cloud as Cloud Asset Inventory serves it: `GET v1/{parent}/assets` at an
organization, folder or project, with the real query parameters (assetTypes, contentType by
name or number, pageSize up to 1000, pageToken) and wire format (assets with name,
assetType, resource.data, iamPolicy, ancestors, updateTime; nextPageToken; Google's error
bodies). Calls carry a self-signed JWT for cloudasset or a token from the fake token service
(google_login), whose signature is checked against the service account's registered key.

Organizations are seeded from Python data (Org, Project, Asset); `start_demo` serves a sample
organization (gcp_sample) with planted gaps beside their well-configured twins; gcp_sample's
`scale_org` builds one of any size for the bench."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from collector.demo.emulators import DemoSource, google_login
from collector.demo.emulators.server import FakeApi, ca_file, json_response, page_of

AUDIENCES = ["https://cloudasset.googleapis.com/"]
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
MANAGER = "//cloudresourcemanager.googleapis.com/"
COMPUTE = "https://www.googleapis.com/compute/v1/projects"
CONTENT_TYPES = {"1": "RESOURCE", "2": "IAM_POLICY", "RESOURCE": "RESOURCE",
                 "IAM_POLICY": "IAM_POLICY"}
# What ListAssets requires of the caller at the parent, by content type.
PERMISSIONS = {"RESOURCE": "cloudasset.assets.listResource",
               "IAM_POLICY": "cloudasset.assets.listIamPolicy"}
MAX_PAGE = 1000
DISCOVERY = {"storage.googleapis.com/Bucket": ("storage", "Bucket"),
             "compute.googleapis.com/Firewall": ("compute", "Firewall"),
             "compute.googleapis.com/Network": ("compute", "Network"),
             "compute.googleapis.com/Subnetwork": ("compute", "Subnetwork"),
             "compute.googleapis.com/Instance": ("compute", "Instance"),
             "sqladmin.googleapis.com/Instance": ("sqladmin", "DatabaseInstance"),
             "cloudkms.googleapis.com/CryptoKey": ("cloudkms", "CryptoKey"),
             "iam.googleapis.com/ServiceAccountKey": ("iam", "ServiceAccountKey"),
             "bigquery.googleapis.com/Dataset": ("bigquery", "Dataset"),
             "dns.googleapis.com/ManagedZone": ("dns", "ManagedZone"),
             "container.googleapis.com/Cluster": ("container", "Cluster"),
             "cloudresourcemanager.googleapis.com/Project": ("cloudresourcemanager", "Project"),
             "cloudresourcemanager.googleapis.com/Folder": ("cloudresourcemanager", "Folder"),
             "cloudresourcemanager.googleapis.com/Organization": ("cloudresourcemanager",
                                                                   "Organization")}


# --- seeds -----------------------------------------------------------------------------------

@dataclass
class Asset:
    type: str
    name: str
    data: dict[str, Any]
    location: str = "global"
    iam: dict[str, Any] | None = None


def _etag(*parts: Any) -> str:
    """A policy etag: bytes in the protobuf, so base64 on the wire."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def policy(bindings: dict[str, list[str]] | None = None,
           audit: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"version": 1, "bindings": [
        {"role": role, "members": members} for role, members in (bindings or {}).items()]}
    if audit:
        out["auditConfigs"] = audit
    out["etag"] = _etag(out)
    return out


def data_access(exempted: list[str] | None = None) -> list[dict[str, Any]]:
    logs: list[dict[str, Any]] = [{"logType": "ADMIN_READ"}, {"logType": "DATA_READ"},
                                  {"logType": "DATA_WRITE"}]
    if exempted:
        logs[1]["exemptedMembers"] = exempted
    return [{"service": "allServices", "auditLogConfigs": logs}]


@dataclass
class Project:
    """A project and what is in it. `number` is its scope; asset names use its id."""

    id: str
    number: str
    folder: str | None = None
    bindings: dict[str, list[str]] = field(default_factory=dict)
    audit: list[dict[str, Any]] | None = None
    assets: list[Asset] = field(default_factory=list)

    def add(self, type_: str, name: str, data: dict[str, Any], location: str = "global",
            iam: dict[str, Any] | None = None) -> Asset:
        asset = Asset(type_, name, data, location, iam)
        self.assets.append(asset)
        return asset

    # One builder per asset type, writing the data as the service's REST API returns it.

    def bucket(self, name: str, *, public: str | None = None, uniform: bool = True,
               versioning: bool = True) -> Asset:
        members = {"roles/storage.legacyBucketOwner": [f"projectOwner:{self.id}"],
                   "roles/storage.legacyBucketReader": [f"projectViewer:{self.id}"]}
        if public:
            members["roles/storage.objectViewer"] = [public]
        return self.add("storage.googleapis.com/Bucket", f"//storage.googleapis.com/{name}", {
            "kind": "storage#bucket", "id": name, "name": name, "location": "US",
            "projectNumber": self.number, "storageClass": "STANDARD",
            "timeCreated": "2023-02-01T10:00:00.000Z",
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": uniform},
                                 "bucketPolicyOnly": {"enabled": uniform},
                                 "publicAccessPrevention": "inherited"},
            "versioning": {"enabled": versioning}}, "us", policy(members))

    def network(self, name: str) -> Asset:
        return self.add("compute.googleapis.com/Network",
                        f"//compute.googleapis.com/projects/{self.id}/global/networks/{name}", {
                            "kind": "compute#network", "name": name, "id": number_of(self.id, name),
                            "autoCreateSubnetworks": name == "default",
                            "routingConfig": {"routingMode": "REGIONAL"},
                            "selfLink": f"{COMPUTE}/{self.id}/global/networks/{name}"})

    def firewall(self, name: str, allowed: list[dict[str, Any]], sources: list[str], *,
                 network: str = "default", direction: str = "INGRESS",
                 disabled: bool = False) -> Asset:
        ranges = {"sourceRanges": sources} if direction == "INGRESS" else {
            "destinationRanges": sources}
        return self.add("compute.googleapis.com/Firewall",
                        f"//compute.googleapis.com/projects/{self.id}/global/firewalls/{name}", {
                            "kind": "compute#firewall", "name": name,
                            "id": number_of(self.id, name), "priority": 1000,
                            "network": f"{COMPUTE}/{self.id}/global/networks/{network}",
                            "direction": direction, "allowed": allowed, **ranges,
                            "disabled": disabled, "logConfig": {"enable": False},
                            "selfLink": f"{COMPUTE}/{self.id}/global/firewalls/{name}"})

    def subnetwork(self, name: str, region: str = "europe-west2", *, flow_logs: bool = True,
                   network: str = "default", purpose: str = "PRIVATE") -> Asset:
        data: dict[str, Any] = {
            "kind": "compute#subnetwork", "name": name, "id": number_of(self.id, region, name),
            "network": f"{COMPUTE}/{self.id}/global/networks/{network}",
            "region": f"{COMPUTE}/{self.id}/regions/{region}", "ipCidrRange": "10.0.0.0/20",
            "purpose": purpose, "privateIpGoogleAccess": True}
        if purpose == "PRIVATE":
            data["enableFlowLogs"] = flow_logs
            data["logConfig"] = {"enable": flow_logs, "aggregationInterval": "INTERVAL_5_SEC",
                                 "flowSampling": 0.5, "metadata": "INCLUDE_ALL_METADATA"} \
                if flow_logs else {"enable": False}
        return self.add("compute.googleapis.com/Subnetwork",
                        f"//compute.googleapis.com/projects/{self.id}/regions/{region}/"
                        f"subnetworks/{name}", data, region)

    def instance(self, name: str, zone: str = "europe-west2-a", *, public_ip: bool = False,
                 default_sa_scopes: list[str] | None = None) -> Asset:
        interface: dict[str, Any] = {"name": "nic0", "networkIP": "10.0.0.2",
                                     "network": f"{COMPUTE}/{self.id}/global/networks/default"}
        if public_ip:
            interface["accessConfigs"] = [{"type": "ONE_TO_ONE_NAT", "name": "External NAT",
                                           "natIP": "203.0.113.10"}]
        account = (f"{self.number}-compute@developer.gserviceaccount.com"
                   if default_sa_scopes is not None
                   else f"app@{self.id}.iam.gserviceaccount.com")
        scopes = default_sa_scopes or ["https://www.googleapis.com/auth/logging.write"]
        return self.add("compute.googleapis.com/Instance",
                        f"//compute.googleapis.com/projects/{self.id}/zones/{zone}/"
                        f"instances/{name}", {
                            "kind": "compute#instance", "name": name,
                            "id": number_of(self.id, name), "status": "RUNNING",
                            "machineType": f"{COMPUTE}/{self.id}/zones/{zone}/machineTypes/"
                                           "e2-small",
                            "zone": f"{COMPUTE}/{self.id}/zones/{zone}",
                            "networkInterfaces": [interface],
                            "serviceAccounts": [{"email": account, "scopes": scopes}],
                            "shieldedInstanceConfig": {"enableSecureBoot": True}},
                        zone)

    def sql(self, name: str, *, networks: tuple[str, ...] = (),
            ssl_mode: str = "ENCRYPTED_ONLY", backups: bool = True, public_ip: bool = False,
            replica: bool = False) -> Asset:
        ip: dict[str, Any] = {"ipv4Enabled": public_ip, "sslMode": ssl_mode,
                              "requireSsl": ssl_mode != "ALLOW_UNENCRYPTED_AND_ENCRYPTED",
                              "authorizedNetworks": [
                                  {"kind": "sql#aclEntry", "name": f"net{n}", "value": value}
                                  for n, value in enumerate(networks)]}
        if not public_ip:
            ip["privateNetwork"] = f"projects/{self.id}/global/networks/default"
        return self.add("sqladmin.googleapis.com/Instance",
                        f"//cloudsql.googleapis.com/projects/{self.id}/instances/{name}", {
                            "kind": "sql#instance", "name": name, "project": self.id,
                            "databaseVersion": "POSTGRES_15", "region": "europe-west2",
                            "state": "RUNNABLE",
                            "instanceType": "READ_REPLICA_INSTANCE" if replica
                            else "CLOUD_SQL_INSTANCE",
                            "settings": {"tier": "db-custom-2-7680", "ipConfiguration": ip,
                                         "backupConfiguration": {
                                             "enabled": backups,
                                             "pointInTimeRecoveryEnabled": backups}}},
                        "europe-west2")

    def crypto_key(self, ring: str, name: str, *, rotation_days: int | None = 90,
                   purpose: str = "ENCRYPT_DECRYPT", public: str | None = None) -> Asset:
        path = f"projects/{self.id}/locations/europe/keyRings/{ring}/cryptoKeys/{name}"
        data: dict[str, Any] = {"name": path, "purpose": purpose,
                                "createTime": "2023-01-01T00:00:00Z",
                                "versionTemplate": {"protectionLevel": "SOFTWARE",
                                                    "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"}}
        if rotation_days is not None:
            data["rotationPeriod"] = f"{rotation_days * 86400}s"
            data["nextRotationTime"] = "2099-01-01T00:00:00Z"
        members = {"roles/cloudkms.cryptoKeyEncrypterDecrypter":
                   [f"serviceAccount:app@{self.id}.iam.gserviceaccount.com"]}
        if public:
            members["roles/cloudkms.cryptoKeyDecrypter"] = [public]
        return self.add("cloudkms.googleapis.com/CryptoKey", f"//cloudkms.googleapis.com/{path}",
                        data, "europe", policy(members))

    def service_account_key(self, account: str, key_id: str, *, age_days: int,
                            user_managed: bool = True, now: datetime) -> Asset:
        unique = number_of(self.id, account, length=21)
        created = now - timedelta(days=age_days)
        return self.add("iam.googleapis.com/ServiceAccountKey",
                        f"//iam.googleapis.com/projects/{self.id}/serviceAccounts/{unique}/"
                        f"keys/{key_id}", {
                            "name": f"projects/{self.id}/serviceAccounts/"
                                    f"{account}@{self.id}.iam.gserviceaccount.com/keys/{key_id}",
                            "keyType": "USER_MANAGED" if user_managed else "SYSTEM_MANAGED",
                            "keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED",
                            "validAfterTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "validBeforeTime": "9999-12-31T23:59:59Z", "disabled": False})

    def dataset(self, name: str, *, public: dict[str, str] | None = None) -> Asset:
        access = [{"role": "OWNER", "specialGroup": "projectOwners"},
                  {"role": "READER", "specialGroup": "projectReaders"}]
        if public:
            access.append({"role": "READER", **public})
        return self.add("bigquery.googleapis.com/Dataset",
                        f"//bigquery.googleapis.com/projects/{self.id}/datasets/{name}", {
                            "kind": "bigquery#dataset", "id": f"{self.id}:{name}",
                            "datasetReference": {"projectId": self.id, "datasetId": name},
                            "location": "EU", "access": access}, "eu")

    def dns_zone(self, name: str, *, dnssec: bool = True, private: bool = False) -> Asset:
        data: dict[str, Any] = {"kind": "dns#managedZone", "name": name,
                                "dnsName": f"{name}.example.", "id": number_of(self.id, name),
                                "visibility": "private" if private else "public"}
        if not private:
            data["dnssecConfig"] = {"state": "on" if dnssec else "off"}
        return self.add("dns.googleapis.com/ManagedZone",
                        f"//dns.googleapis.com/projects/{self.id}/managedZones/{name}", data)

    def cluster(self, name: str, *, legacy_abac: bool = False) -> Asset:
        return self.add("container.googleapis.com/Cluster",
                        f"//container.googleapis.com/projects/{self.id}/locations/europe-west2/"
                        f"clusters/{name}", {
                            "name": name, "location": "europe-west2", "status": "RUNNING",
                            "legacyAbac": {"enabled": legacy_abac},
                            "privateClusterConfig": {"enablePrivateNodes": True}},
                        "europe-west2")


@dataclass
class Org:
    number: str
    domain: str
    folders: dict[str, str]  # number -> display name, all directly below the organization
    projects: list[Project]
    audit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # folders/N -> theirs


def number_of(*parts: str, length: int = 19) -> str:
    value = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    return str(10 ** (length - 1) + value % (9 * 10 ** (length - 1)))


# --- the assets as Cloud Asset Inventory lists them ------------------------------------------

@dataclass
class Listed:
    """One asset in wire format for each content type, with where it sits."""

    ancestors: list[str]
    asset_type: str
    resource: dict[str, Any] | None
    iam: dict[str, Any] | None


def build(org: Org) -> list[Listed]:
    out: list[Listed] = []
    top = f"organizations/{org.number}"
    updated = "2024-05-01T12:00:00.000000Z"

    def listed(asset: Asset, ancestors: list[str], parent: str) -> Listed:
        api, name = DISCOVERY[asset.type]
        common = {"name": asset.name, "assetType": asset.type, "ancestors": ancestors,
                  "updateTime": updated}
        resource = {**common, "resource": {
            "version": "v1", "discoveryName": name, "parent": parent, "data": asset.data,
            "location": asset.location,
            "discoveryDocumentUri": f"https://www.googleapis.com/discovery/v1/apis/{api}/v1/"
                                    "rest"}}
        iam = {**common, "iamPolicy": asset.iam} if asset.iam is not None else None
        return Listed(ancestors, asset.type, resource, iam)

    out.append(listed(Asset("cloudresourcemanager.googleapis.com/Organization",
                            f"{MANAGER}{top}", {"name": top, "displayName": org.domain},
                            iam=policy({"roles/resourcemanager.organizationAdmin":
                                        [f"group:admins@{org.domain}"]},
                                       org.audit.get(top))), [top], ""))
    for number, display in org.folders.items():
        folder = f"folders/{number}"
        out.append(listed(Asset("cloudresourcemanager.googleapis.com/Folder",
                                f"{MANAGER}{folder}", {"name": folder, "displayName": display,
                                                       "parent": top},
                                iam=policy({"roles/resourcemanager.folderViewer":
                                            [f"group:auditors@{org.domain}"]},
                                           org.audit.get(folder))),
                          [folder, top], f"{MANAGER}{top}"))
    for project in org.projects:
        above = ([f"folders/{project.folder}"] if project.folder else []) + [top]
        ancestors = [f"projects/{project.number}", *above]
        parent = f"{MANAGER}{above[0]}"
        record = Asset("cloudresourcemanager.googleapis.com/Project",
                       f"{MANAGER}projects/{project.number}", {
                           "projectNumber": project.number, "projectId": project.id,
                           "lifecycleState": "ACTIVE", "name": project.id,
                           "createTime": "2022-06-01T09:00:00.000Z",
                           "parent": {"type": "folder" if project.folder else "organization",
                                      "id": project.folder or org.number}},
                       iam=policy(project.bindings, project.audit))
        out.append(listed(record, ancestors, parent))
        project_parent = f"{MANAGER}projects/{project.number}"
        out.extend(listed(asset, ancestors, project_parent) for asset in project.assets)
    return out


# --- error answers ---------------------------------------------------------------------------

def google_error(code: int, status: str, message: str,
                 headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message, "status": status}}, code,
                         headers)


def exhausted_429(_request: Request | None = None) -> Response:
    """Cloud Asset's quota refusal: no Retry-After."""
    return json_response({"error": {
        "code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "Quota exceeded for quota metric 'List Assets requests' and limit 'List "
                   "Assets requests per minute' of service 'cloudasset.googleapis.com'.",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}]}}, 429)


def denied_403(_request: Request | None = None) -> Response:
    return google_error(403, "PERMISSION_DENIED", "The caller does not have permission")


def unauthenticated_401(_request: Request | None = None) -> Response:
    return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                        "credentials. Expected OAuth 2 access token, login cookie or other "
                        "valid authentication credential.")


# --- the route -------------------------------------------------------------------------------

@dataclass
class Cloud:
    api: FakeApi
    accounts: google_login.Accounts
    assets: list[Listed] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)  # project id -> number
    denied: set[str] = field(default_factory=set)  # parents that answer 403
    # The caller's permissions at every parent, if limited (None: all of them).
    permissions: set[str] | None = None
    token_url: str = ""

    def add(self, org: Org) -> None:
        self.assets.extend(build(org))
        self.projects.update((p.id, p.number) for p in org.projects)

    def reset(self) -> None:
        self.assets.clear()
        self.projects.clear()
        self.denied.clear()
        self.permissions = None
        self.api.heal()
        self.api.reset_calls()
        self.accounts.tokens.revoke_all()
        self.accounts.token_requests = 0

    def key_file(self, path: Path) -> Path:
        email = f"annexa-{hashlib.sha256(str(path).encode()).hexdigest()[:6]}@annexa-demo.iam." \
                "gserviceaccount.com"
        path.write_text(json.dumps(self.accounts.service_account(email, self.token_url)))
        return path


def install(api: FakeApi, accounts: google_login.Accounts) -> Cloud:
    cloud = Cloud(api, accounts)
    api.data["gcp"] = cloud
    cloud.token_url = google_login.install(api, accounts)

    @api.route("GET", r"/v1/(?P<kind>organizations|folders|projects)/(?P<id>[^/]+)/assets",
               name="assets.list")
    def assets_list(request: Request, kind: str, id: str) -> Any:
        problem, grant = google_login.bearer(request, accounts, AUDIENCES)
        if problem:
            return unauthenticated_401()
        scopes = grant.get("scopes") or set()
        if scopes and CLOUD_PLATFORM not in scopes:
            return google_error(403, "PERMISSION_DENIED",
                                "Request had insufficient authentication scopes.")
        if kind == "projects" and id in cloud.projects:
            id = cloud.projects[id]
        parent = f"{kind}/{id}"
        if parent in cloud.denied or not any(parent in a.ancestors for a in cloud.assets):
            return denied_403()
        content = CONTENT_TYPES.get(request.args.get("contentType", "RESOURCE"))
        if content is None:
            return google_error(400, "INVALID_ARGUMENT", "Invalid content_type")
        if cloud.permissions is not None and PERMISSIONS[content] not in cloud.permissions:
            return denied_403()
        try:
            size = int(request.args.get("pageSize") or 100)
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid page_size")
        if not 1 <= size <= MAX_PAGE:
            return google_error(400, "INVALID_ARGUMENT", "page_size must be in [1, 1000]")
        types = set(request.args.getlist("assetTypes"))
        chosen = [(a.resource if content == "RESOURCE" else a.iam) for a in cloud.assets
                  if parent in a.ancestors and (not types or a.asset_type in types)]
        chosen = [item for item in chosen if item is not None]
        try:
            chunk, token = page_of(chosen, request.args.get("pageToken"),
                                   min(size, api.page_size))
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid page_token")
        body: dict[str, Any] = {"readTime": datetime.now(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")}
        if chunk:
            body["assets"] = chunk
        if token:
            body["nextPageToken"] = token
        return body

    return cloud


def start_demo(workdir: Path) -> DemoSource:
    """The Example Co organization on loopback, its key file in `workdir`."""
    from collector.demo.emulators import gcp_sample

    api = FakeApi("gcp").start()
    cloud = install(api, google_login.Accounts())
    cloud.add(gcp_sample.sample_org())
    key = cloud.key_file(Path(workdir) / "gcp-demo-sa.json")
    source = {"name": "gcp-demo", "kind": "gcp", "schedule": "15m",
              "organization": gcp_sample.ORG, "credentials_file": str(key),
              "api_endpoint": api.url, "ca_bundle": str(ca_file())}
    return DemoSource(source=source, planted=gcp_sample.planted(), stop=api.stop)
