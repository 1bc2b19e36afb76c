"""The IAM actions the AWS connector needs, each with the one call that exercises it, for
`annexa doctor`. They follow config/aws/annexa-readonly-policy.json (and, for an
`organization:` source, config/aws/annexa-organization-policy.json).

A call about one resource (a bucket's policy, a key's rotation) is made on the first resource
the listing before it found; with none, it is untested. Where a read has nothing to return
(no password policy, no credential report yet), AWS says so only to a caller it authorised.
IAM Identity Center is probed in the first region only: elsewhere, the calls about its store and
permission sets are untested."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore import xform_name

from connectors.aws.session import AwsSession
from connectors.aws.settings import Settings
from connectors.aws.svc_s3 import s3control_client
from connectors.probing import Plan, Probe, Untested

POLICY = "config/aws/annexa-readonly-policy.json"
ORGANIZATION_POLICY = "config/aws/annexa-organization-policy.json"
# The organisation's own SCP, which every organisation with SCPs enabled has.
FULL_ACCESS_SCP = "p-FullAWSAccess"


class _Calls:
    """The source's clients, and the answers of listing calls kept for the calls about one
    resource that follow them (each call is still made once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = AwsSession(settings)
        self.region = settings.regions[0]
        self._answers: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        return self.session.client(service, self.region)

    def listing(self, name: str, call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            self._answers[name] = None
            self._answers[name] = answer = call()
            return answer
        return run

    def first(self, name: str, pick: Callable[[Any], list[Any]], what: str) -> Any:
        answer = self._answers.get(name)
        if answer is None:
            raise Untested(f"the {name} call failed: no {what} to ask about")
        found = pick(answer)
        if not found:
            raise Untested(f"no {what} to ask about")
        return found[0]

    def account(self) -> str:
        if "account" not in self._answers:
            self._answers["account"] = self.client("sts").get_caller_identity()["Account"]
        return str(self._answers["account"])


def plan(settings: Settings) -> Plan:
    calls = _Calls(settings)
    c = calls.client

    def bucket() -> str:
        return str(calls.first("ListBuckets", lambda a: a["Buckets"], "bucket")["Name"])

    def key() -> str:
        return str(calls.first("ListKeys", lambda a: a["Keys"], "KMS key")["KeyId"])

    def trail() -> str:
        return str(calls.first("DescribeTrails", lambda a: a["trailList"], "trail")["TrailARN"])

    def detector() -> str:
        return str(calls.first("ListDetectors", lambda a: a["DetectorIds"], "detector"))

    def sso() -> Any:
        return c("sso-admin")

    def sso_call(operation: str, **params: Any) -> Any:
        return getattr(sso(), xform_name(operation))(**params)

    def instance() -> dict[str, Any]:
        return dict(calls.first("ListInstances", lambda a: a["Instances"],
                                "IAM Identity Center instance"))

    def store() -> str:
        return str(instance()["IdentityStoreId"])

    def permission_set() -> dict[str, str]:
        arn = calls.first("ListPermissionSets", lambda a: a["PermissionSets"], "permission set")
        return {"InstanceArn": str(instance()["InstanceArn"]), "PermissionSetArn": str(arn)}

    def group() -> str:
        return str(calls.first("ListGroups", lambda a: a["Groups"], "group")["GroupId"])

    def probe(action: str, call: Callable[[], Any], *authorised: str, policy: str = POLICY,
              operation: str | None = None) -> Probe:
        """`operation` is the API call when it is not named as the action is."""
        service, _, name = action.partition(":")
        return Probe(action, operation or f"{service} {name}", call, policy,
                     authorised=authorised)

    probes = [
        probe("cloudtrail:DescribeTrails", calls.listing(
            "DescribeTrails", lambda: c("cloudtrail").describe_trails(includeShadowTrails=True))),
        probe("cloudtrail:GetEventSelectors",
              lambda: c("cloudtrail").get_event_selectors(TrailName=trail())),
        probe("cloudtrail:GetTrailStatus", lambda: c("cloudtrail").get_trail_status(Name=trail())),
        probe("config:BatchGetResourceConfig", lambda: c("config").batch_get_resource_config(
            resourceKeys=[{"resourceType": "AWS::S3::Bucket", "resourceId": "annexa-doctor"}])),
        probe("config:DescribeConfigurationRecorderStatus",
              lambda: c("config").describe_configuration_recorder_status()),
        probe("config:DescribeConfigurationRecorders",
              lambda: c("config").describe_configuration_recorders()),
        probe("ec2:DescribeFlowLogs", lambda: c("ec2").describe_flow_logs(MaxResults=5)),
        probe("ec2:DescribeSecurityGroups",
              lambda: c("ec2").describe_security_groups(MaxResults=5)),
        probe("ec2:DescribeVolumes", lambda: c("ec2").describe_volumes(MaxResults=5)),
        probe("ec2:DescribeVpcs", lambda: c("ec2").describe_vpcs(MaxResults=5)),
        probe("ec2:GetEbsDefaultKmsKeyId", lambda: c("ec2").get_ebs_default_kms_key_id()),
        probe("ec2:GetEbsEncryptionByDefault", lambda: c("ec2").get_ebs_encryption_by_default()),
        probe("guardduty:ListDetectors", calls.listing(
            "ListDetectors", lambda: c("guardduty").list_detectors())),
        probe("guardduty:GetDetector", lambda: c("guardduty").get_detector(DetectorId=detector())),
        probe("iam:GenerateCredentialReport", lambda: c("iam").generate_credential_report()),
        probe("iam:GetAccountAuthorizationDetails",
              lambda: c("iam").get_account_authorization_details(MaxItems=1)),
        probe("iam:GetAccountPasswordPolicy", lambda: c("iam").get_account_password_policy(),
              "NoSuchEntity"),
        probe("iam:GetAccountSummary", lambda: c("iam").get_account_summary()),
        probe("iam:GetCredentialReport", lambda: c("iam").get_credential_report(),
              "ReportNotPresent", "ReportInProgress", "ReportExpired"),
        # Identity Center: its instance first, for the calls about its store and sets.
        probe("sso:ListInstances", calls.listing(
            "ListInstances", lambda: sso().list_instances(MaxResults=1)),
            operation="sso-admin ListInstances"),
        probe("sso:ListPermissionSets", calls.listing("ListPermissionSets", lambda: sso(
            ).list_permission_sets(InstanceArn=instance()["InstanceArn"], MaxResults=1)),
            operation="sso-admin ListPermissionSets"),
        *(probe(f"sso:{name}", lambda name=name: sso_call(name, **permission_set()),
                operation=f"sso-admin {name}")
          for name in ("DescribePermissionSet", "GetInlinePolicyForPermissionSet",
                       "ListAccountsForProvisionedPermissionSet",
                       "ListCustomerManagedPolicyReferencesInPermissionSet",
                       "ListManagedPoliciesInPermissionSet")),
        probe("sso:ListAccountAssignments", lambda: sso().list_account_assignments(
            AccountId=calls.account(), MaxResults=1, **permission_set()),
            operation="sso-admin ListAccountAssignments"),
        probe("identitystore:ListGroups", calls.listing("ListGroups", lambda: c(
            "identitystore").list_groups(IdentityStoreId=store(), MaxResults=1))),
        probe("identitystore:ListUsers",
              lambda: c("identitystore").list_users(IdentityStoreId=store(), MaxResults=1)),
        probe("identitystore:ListGroupMemberships",
              lambda: c("identitystore").list_group_memberships(
                  IdentityStoreId=store(), GroupId=group(), MaxResults=1)),
        probe("kms:ListKeys", calls.listing("ListKeys", lambda: c("kms").list_keys(Limit=10))),
        probe("kms:DescribeKey", lambda: c("kms").describe_key(KeyId=key())),
        probe("kms:GetKeyRotationStatus", lambda: c("kms").get_key_rotation_status(KeyId=key())),
        probe("kms:ListAliases", lambda: c("kms").list_aliases(Limit=10)),
        probe("rds:DescribeDBInstances", lambda: c("rds").describe_db_instances(MaxRecords=20)),
        probe("s3:GetAccountPublicAccessBlock",
              lambda: s3control_client(calls.session, calls.account()).get_public_access_block(
                  AccountId=calls.account()),
              "NoSuchPublicAccessBlockConfiguration", operation="s3control GetPublicAccessBlock"),
        probe("s3:ListAllMyBuckets", calls.listing(
            "ListBuckets", lambda: c("s3").list_buckets(MaxBuckets=10)),
            operation="s3 ListBuckets"),
        probe("s3:GetBucketLocation", lambda: c("s3").get_bucket_location(Bucket=bucket())),
        probe("s3:GetBucketLogging", lambda: c("s3").get_bucket_logging(Bucket=bucket())),
        probe("s3:GetBucketPolicy", lambda: c("s3").get_bucket_policy(Bucket=bucket()),
              "NoSuchBucketPolicy"),
        probe("s3:GetBucketPublicAccessBlock",
              lambda: c("s3").get_public_access_block(Bucket=bucket()),
              "NoSuchPublicAccessBlockConfiguration", operation="s3 GetPublicAccessBlock"),
        probe("s3:GetBucketVersioning", lambda: c("s3").get_bucket_versioning(Bucket=bucket())),
        probe("s3:GetEncryptionConfiguration",
              lambda: c("s3").get_bucket_encryption(Bucket=bucket()),
              "ServerSideEncryptionConfigurationNotFoundError",
              operation="s3 GetBucketEncryption"),
    ]
    if settings.organization is not None:
        probes += _organization(calls, probe)
    return Plan(probes, login=calls.account, login_call="sts GetCallerIdentity")


def _organization(calls: _Calls, probe: Callable[..., Probe]) -> list[Probe]:
    org = calls.client("organizations")

    def root() -> str:
        return str(calls.first("ListRoots", lambda a: a["Roots"], "root")["Id"])

    def make(action: str, call: Callable[[], Any], *authorised: str) -> Probe:
        return probe(action, call, *authorised, policy=ORGANIZATION_POLICY)

    return [
        make("organizations:DescribeOrganization", lambda: org.describe_organization()),
        make("organizations:ListAccounts", lambda: org.list_accounts(MaxResults=1)),
        make("organizations:ListRoots", calls.listing("ListRoots", lambda: org.list_roots())),
        make("organizations:ListAccountsForParent",
             lambda: org.list_accounts_for_parent(ParentId=root(), MaxResults=1)),
        make("organizations:ListOrganizationalUnitsForParent",
             lambda: org.list_organizational_units_for_parent(ParentId=root(), MaxResults=1)),
        make("organizations:ListPolicies",
             lambda: org.list_policies(Filter="SERVICE_CONTROL_POLICY", MaxResults=1)),
        make("organizations:DescribePolicy", lambda: org.describe_policy(
            PolicyId=FULL_ACCESS_SCP), "PolicyNotFoundException"),
        make("organizations:ListTargetsForPolicy", lambda: org.list_targets_for_policy(
            PolicyId=FULL_ACCESS_SCP, MaxResults=1), "PolicyNotFoundException"),
    ]
