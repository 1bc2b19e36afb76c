"""IAM and KMS of the sample organisation: a few people and machines, their groups and roles,
a weak password policy, wildcard admin policies (one spelt with NotAction) held by a group, a
machine user and roles, and KMS keys with and without rotation.

What the emulator cannot express is not planted: the root user never has MFA there (so that
failure is planted, as in a fresh account), and credentials cannot be backdated through the
API, so `dave` (a leaver) and `legacy-etl` (an old batch job) look freshly created here while
in a real account their password and key would be long unused.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from collector.demo.seed import ACCOUNT, Client, Planted, plant

ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
FULL_ADMIN = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DEVELOPER = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ec2:Describe*", "logs:Get*", "logs:FilterLogEvents"],
     "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:aws:s3:::acme-app-*/*"},
]}
# Full admin in other words: every action but one, which the holder can grant back.
PLATFORM_ALL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "NotAction": ["s3:DeleteBucket"], "Resource": "*"},
]}
AUDIT_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["cloudtrail:LookupEvents", "config:Get*", "iam:Get*"],
     "Resource": "*"},
]}


def _trust(principal: Any, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal,
                                 "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _person(iam: Any, name: str, group: str, *, mfa: bool) -> str:
    arn = iam.create_user(UserName=name, Tags=[{"Key": "kind", "Value": "person"}])["User"]["Arn"]
    iam.create_login_profile(UserName=name, Password="Demo-only-password-1!")
    iam.add_user_to_group(GroupName=group, UserName=name)
    if mfa:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"][
            "SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial,
                              AuthenticationCode1="123456", AuthenticationCode2="654321")
    return arn


def _seed_iam(iam: Any, region: str, planted: Planted) -> None:
    plant(planted, "aws.iam.root_account_mfa_enabled", f"arn:aws:iam::{ACCOUNT}:root")

    iam.update_account_password_policy(MinimumPasswordLength=8, RequireNumbers=True,
                                       AllowUsersToChangePassword=True)
    plant(planted, "aws.iam.password_policy_strong", f"arn:aws:iam::{ACCOUNT}:password-policy")

    org_admin = iam.create_policy(PolicyName="OrgAdmin", PolicyDocument=json.dumps(FULL_ADMIN),
                                  Description="break-glass admin")["Policy"]["Arn"]
    plant(planted, "aws.iam.policy_grants_no_full_admin", org_admin)
    developer = iam.create_policy(PolicyName="DeveloperAccess",
                                  PolicyDocument=json.dumps(DEVELOPER))["Policy"]["Arn"]
    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn=org_admin)
    iam.create_group(GroupName="developers")
    iam.attach_group_policy(GroupName="developers", PolicyArn=developer)

    plant(planted, "aws.iam.group_grants_no_full_admin", f"arn:aws:iam::{ACCOUNT}:group/admins")

    alice = _person(iam, "alice", "admins", mfa=True)
    plant(planted, "aws.iam.user_holds_no_full_admin", alice)
    bob = _person(iam, "bob", "developers", mfa=False)
    plant(planted, "aws.iam.user_console_mfa_enabled", bob)
    _person(iam, "dave", "developers", mfa=True)
    carol = _person(iam, "carol", "developers", mfa=True)
    iam.put_user_policy(UserName="carol", PolicyName="audit-read",
                        PolicyDocument=json.dumps(AUDIT_READ))
    plant(planted, "aws.iam.user_permissions_granted_through_groups", carol)

    ci = iam.create_user(UserName="ci-deploy")["User"]["Arn"]
    try:
        iam.attach_user_policy(UserName="ci-deploy", PolicyArn=ADMINISTRATOR_ACCESS)
    except iam.exceptions.NoSuchEntityException:
        # Emulators without AWS-managed policies (moto's default): the same grant, inline.
        iam.put_user_policy(UserName="ci-deploy", PolicyName="deploy-everything",
                            PolicyDocument=json.dumps(FULL_ADMIN))
    plant(planted, "aws.iam.user_has_no_direct_admin_rights", ci)
    plant(planted, "aws.iam.user_holds_no_full_admin", ci)
    plant(planted, "aws.iam.user_permissions_granted_through_groups", ci)
    key = iam.create_access_key(UserName="ci-deploy")["AccessKey"]
    # One call with the key, so that the credential report shows it in use.
    boto3.client("sts", region_name=region, endpoint_url=iam.meta.endpoint_url,
                 aws_access_key_id=key["AccessKeyId"],
                 aws_secret_access_key=key["SecretAccessKey"]).get_caller_identity()

    iam.create_user(UserName="legacy-etl")
    iam.add_user_to_group(GroupName="developers", UserName="legacy-etl")
    iam.create_access_key(UserName="legacy-etl")

    app = iam.create_role(RoleName="app-server",
                          AssumeRolePolicyDocument=_trust({"Service": "ec2.amazonaws.com"}))
    iam.attach_role_policy(RoleName="app-server", PolicyArn=developer)
    iam.create_instance_profile(InstanceProfileName="app-server")
    iam.add_role_to_instance_profile(InstanceProfileName="app-server",
                                     RoleName=app["Role"]["RoleName"])
    iam.create_role(RoleName="org-readonly", AssumeRolePolicyDocument=_trust(
        {"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}))
    vendor = iam.create_role(RoleName="vendor-audit",
                             AssumeRolePolicyDocument=_trust({"AWS": "*"}))["Role"]["Arn"]
    plant(planted, "aws.iam.role_trust_policy_not_public", vendor)

    # Full admin held by roles: one taken up only with MFA, one a build service assumes.
    iam.create_role(RoleName="break-glass", AssumeRolePolicyDocument=_trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    iam.attach_role_policy(RoleName="break-glass", PolicyArn=org_admin)
    platform = iam.create_policy(PolicyName="PlatformAll",
                                 PolicyDocument=json.dumps(PLATFORM_ALL))["Policy"]["Arn"]
    plant(planted, "aws.iam.policy_grants_no_full_admin", platform)
    builder = iam.create_role(RoleName="platform-build", AssumeRolePolicyDocument=_trust(
        {"Service": "codebuild.amazonaws.com"}))["Role"]["Arn"]
    iam.attach_role_policy(RoleName="platform-build", PolicyArn=platform)
    plant(planted, "aws.iam.role_full_admin_requires_mfa", builder)


def _seed_kms(kms: Any, region: str, first: bool, planted: Planted) -> None:
    def key(alias: str, **params: Any) -> dict[str, Any]:
        meta = kms.create_key(Description=alias, **params)["KeyMetadata"]
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=meta["KeyId"])
        return meta

    kms.enable_key_rotation(KeyId=key("app-data")["KeyId"])
    plant(planted, "aws.kms.key_rotation_enabled", key("legacy-backups")["Arn"])
    key("release-signing", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    if first:
        doomed = key("old-project")
        kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=30)
        plant(planted, "aws.kms.key_not_pending_deletion", doomed["Arn"])


def seed(client: Client, regions: list[str], planted: Planted) -> None:
    _seed_iam(client("iam", regions[0]), regions[0], planted)
    for region in regions:
        _seed_kms(client("kms", region), region, region == regions[0], planted)
