"""The sample Google Cloud organization of the demo and the tests: projects with planted gaps
beside their well-configured twins, `planted()` naming exactly what must fail, and
`scale_org` for the bench (any number of assets spread over any number of projects)."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.demo.emulators.gcp import Org, Project, data_access, number_of

ORG = "123456789012"
PROD_FOLDER, LAB_FOLDER = "456", "789"
DOMAIN = "example.com"
ANYWHERE = ["0.0.0.0/0"]
IAP = ["35.235.240.0/20"]
TCP = "tcp"
CLOUD_PLATFORM = ["https://www.googleapis.com/auth/cloud-platform"]


def _gaps(now: datetime) -> Project:
    p = Project("gaps-prod", "100000000001", PROD_FOLDER, bindings={
        "roles/owner": [f"user:ada@{DOMAIN}", f"group:platform@{DOMAIN}"],
        "roles/editor": ["serviceAccount:ci@gaps-prod.iam.gserviceaccount.com"],
        "roles/viewer": [f"group:auditors@{DOMAIN}"]})
    p.bucket("gaps-public-assets", public="allUsers", versioning=False)
    p.bucket("gaps-shared-exports", public="allAuthenticatedUsers")
    p.bucket("gaps-legacy-acl", uniform=False)
    p.network("prod-vpc")
    p.firewall("allow-ssh", [{"IPProtocol": TCP, "ports": ["22"]}], ANYWHERE, network="prod-vpc")
    p.firewall("allow-admin", [{"IPProtocol": TCP, "ports": ["20-30", "3389"]}],
               ["10.0.0.0/8", "0.0.0.0/0"], network="prod-vpc")
    p.firewall("allow-all", [{"IPProtocol": "all"}], ANYWHERE, network="prod-vpc")
    p.subnetwork("app", network="prod-vpc", flow_logs=False)
    p.instance("web-1", public_ip=True, default_sa_scopes=CLOUD_PLATFORM)
    p.sql("orders-db", networks=("0.0.0.0/0",), ssl_mode="ALLOW_UNENCRYPTED_AND_ENCRYPTED",
          public_ip=True)
    p.sql("reports-db", backups=False)
    p.crypto_key("app", "never-rotated", rotation_days=None)
    p.crypto_key("app", "yearly", rotation_days=365, public="allAuthenticatedUsers")
    p.service_account_key("ci", "a1b2c3d4e5f60718293a4b5c6d7e8f9011223344", age_days=200,
                          now=now)
    p.dataset("public_stats", public={"specialGroup": "allAuthenticatedUsers"})
    p.dns_zone("gaps-example", dnssec=False)
    p.cluster("gaps-gke", legacy_abac=True)
    return p


def _lab() -> Project:
    p = Project("gaps-lab", "100000000003", LAB_FOLDER,
                bindings={"roles/owner": [f"group:lab@{DOMAIN}"]})
    p.network("default")
    p.subnetwork("default", "us-central1", flow_logs=False)
    return p


def _twin(now: datetime) -> Project:
    p = Project("twin-prod", "100000000002", PROD_FOLDER, bindings={
        "roles/owner": [f"group:platform@{DOMAIN}"],
        "roles/editor": [f"group:developers@{DOMAIN}"],
        "roles/storage.objectViewer": ["serviceAccount:app@twin-prod.iam.gserviceaccount.com"]},
        audit=data_access())
    p.bucket("twin-assets")
    p.network("prod-vpc")
    p.firewall("allow-ssh-iap", [{"IPProtocol": TCP, "ports": ["22", "3389"]}], IAP,
               network="prod-vpc")
    p.firewall("allow-https", [{"IPProtocol": TCP, "ports": ["443"]}], ANYWHERE,
               network="prod-vpc")
    p.firewall("old-ssh", [{"IPProtocol": TCP, "ports": ["22"]}], ANYWHERE, network="prod-vpc",
               disabled=True)
    p.firewall("egress-all", [{"IPProtocol": "all"}], ANYWHERE, network="prod-vpc",
               direction="EGRESS")
    p.subnetwork("app", network="prod-vpc")
    p.subnetwork("proxy-only", network="prod-vpc", purpose="REGIONAL_MANAGED_PROXY")
    p.instance("api-1")
    p.sql("orders-db", networks=("203.0.113.0/24",))
    p.sql("orders-db-replica", replica=True, backups=False)
    p.crypto_key("app", "data", rotation_days=90)
    p.crypto_key("app", "signing", rotation_days=None, purpose="ASYMMETRIC_SIGN")
    p.service_account_key("app", "f0e1d2c3b4a5968778695a4b3c2d1e0f11223344", age_days=10,
                          now=now)
    p.service_account_key("app", "0011223344556677889900aabbccddeeff001122", age_days=400,
                          user_managed=False, now=now)
    p.dataset("internal_stats", public=None)
    p.dns_zone("twin-example")
    p.dns_zone("internal", dnssec=False, private=True)
    p.cluster("twin-gke")
    return p


def sample_org(now: datetime | None = None) -> Org:
    """Example Co: its prod folder turns Data Access logs on for all below it, the lab folder
    does not."""
    now = now or datetime.now(UTC)
    return Org(ORG, DOMAIN, {PROD_FOLDER: "prod", LAB_FOLDER: "lab"},
               [_gaps(now), _lab(), _twin(now)],
               audit={f"folders/{PROD_FOLDER}": data_access()})


def project_key(number: str) -> str:
    return f"//cloudresourcemanager.googleapis.com/projects/{number}"


def planted() -> dict[str, set[str]]:
    """Check id -> the keys that must fail it (twin-prod plants nothing)."""
    gaps, lab = "gaps-prod", "gaps-lab"
    compute = f"//compute.googleapis.com/projects/{gaps}"
    sql = f"//cloudsql.googleapis.com/projects/{gaps}/instances"
    kms = f"//cloudkms.googleapis.com/projects/{gaps}/locations/europe/keyRings/app/cryptoKeys"
    bucket = "//storage.googleapis.com"
    key = "a1b2c3d4e5f60718293a4b5c6d7e8f9011223344"
    return {
        "gcp.storage_bucket_not_public": {f"{bucket}/gaps-public-assets",
                                          f"{bucket}/gaps-shared-exports"},
        "gcp.storage_bucket_uniform_access": {f"{bucket}/gaps-legacy-acl"},
        "gcp.storage_bucket_versioning": {f"{bucket}/gaps-public-assets"},
        "gcp.firewall_no_ssh_from_internet": {f"{compute}/global/firewalls/{n}"
                                              for n in ("allow-ssh", "allow-admin", "allow-all")},
        "gcp.firewall_no_rdp_from_internet": {f"{compute}/global/firewalls/{n}"
                                              for n in ("allow-admin", "allow-all")},
        "gcp.firewall_no_all_ports_from_internet": {f"{compute}/global/firewalls/allow-all"},
        "gcp.subnetwork_flow_logs": {f"{compute}/regions/europe-west2/subnetworks/app",
                                     f"//compute.googleapis.com/projects/{lab}/regions/"
                                     "us-central1/subnetworks/default"},
        "gcp.compute_instance_no_public_ip": {f"{compute}/zones/europe-west2-a/instances/web-1"},
        "gcp.compute_instance_default_sa_full_access": {
            f"{compute}/zones/europe-west2-a/instances/web-1"},
        "gcp.sql_no_world_authorized_network": {f"{sql}/orders-db"},
        "gcp.sql_requires_ssl": {f"{sql}/orders-db"},
        "gcp.sql_backups_enabled": {f"{sql}/reports-db"},
        "gcp.sql_no_public_ip": {f"{sql}/orders-db"},
        "gcp.kms_key_rotation_90_days": {f"{kms}/never-rotated", f"{kms}/yearly"},
        "gcp.kms_key_not_public": {f"{kms}/yearly"},
        "gcp.service_account_key_younger_than_90_days": {
            f"//iam.googleapis.com/projects/{gaps}/serviceAccounts/"
            f"{number_of(gaps, 'ci', length=21)}/keys/{key}"},
        "gcp.bigquery_dataset_not_public": {
            f"//bigquery.googleapis.com/projects/{gaps}/datasets/public_stats"},
        "gcp.dns_zone_dnssec": {f"//dns.googleapis.com/projects/{gaps}/managedZones/gaps-example"},
        "gcp.gke_legacy_abac_disabled": {
            f"//container.googleapis.com/projects/{gaps}/locations/europe-west2/clusters/gaps-gke"},
        "gcp.project_no_user_owner": {project_key("100000000001")},
        "gcp.project_no_service_account_basic_role": {project_key("100000000001")},
        "gcp.project_data_access_audit_logs": {project_key("100000000003")},
        "gcp.project_default_network_removed": {project_key("100000000003")},
    }


# In scale_org, every n-th bucket is public and every n-th firewall rule admits SSH from
# anywhere; everything else is well configured.
PUBLIC_BUCKET_EVERY, SSH_RULE_EVERY = 10, 10


def scale_org(assets: int, projects: int = 50) -> tuple[Org, dict[str, int]]:
    """About `assets` assets over `projects` projects, a mix of the collected types, and how
    many fail each check that has planted gaps."""
    now = datetime.now(UTC)
    per_project = max(assets // projects, 1)
    out: list[Project] = []
    expected = {"gcp.storage_bucket_not_public": 0, "gcp.firewall_no_ssh_from_internet": 0}
    buckets = rules = 0
    for n in range(projects):
        pid = f"bench-{n:04d}"
        p = Project(pid, f"2{n:011d}", PROD_FOLDER, bindings={
            "roles/owner": [f"group:platform@{DOMAIN}"]}, audit=data_access())
        for i in range(per_project - 1):
            pick = i % 8
            if pick == 0:
                public = buckets % PUBLIC_BUCKET_EVERY == 0
                p.bucket(f"{pid}-b{i}", public="allUsers" if public else None)
                expected["gcp.storage_bucket_not_public"] += public
                buckets += 1
            elif pick == 1:
                ssh = rules % SSH_RULE_EVERY == 0
                p.firewall(f"fw-{i}", [{"IPProtocol": TCP, "ports": ["22" if ssh else "443"]}],
                           ANYWHERE)
                expected["gcp.firewall_no_ssh_from_internet"] += ssh
                rules += 1
            elif pick == 2:
                p.subnetwork(f"sub-{i}")
            elif pick == 3:
                p.instance(f"vm-{i}")
            elif pick == 4:
                p.crypto_key("ring", f"key-{i}")
            elif pick == 5:
                p.service_account_key("app", f"{i:040x}", age_days=5, now=now)
            elif pick == 6:
                p.dataset(f"ds_{i}")
            else:
                p.sql(f"db-{i}")
        out.append(p)
    return Org(ORG, DOMAIN, {PROD_FOLDER: "prod"}, out), expected
