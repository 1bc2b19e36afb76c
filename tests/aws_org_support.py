"""An AWS Organization on a moto server of its own: the management account 123456789012 (moto's
default credentials), member accounts made with CreateAccount and reached by AssumeRole (moto
gives an assumed role's credentials the role's account), and a gate in front of moto that
refuses AssumeRole into chosen accounts as STS does when a role's trust policy says no."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3
import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

MANAGEMENT = "123456789012"
ROLE = "AnnexaReadOnly"
REGION = "us-east-1"

_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<Error><Type>Sender</Type><Code>AccessDenied</Code>
<Message>User: arn:aws:iam::123456789012:user/annexa is not authorized to perform:
sts:AssumeRole on resource: {arn}</Message></Error>
<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"""


class Gate:
    """WSGI middleware before moto: AssumeRole into an account of `denied` is refused."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.denied: set[str] = set()
        self.delay = 0.0  # seconds added before every answer, as a distant endpoint would
        # While cleared, every answer waits (at most a minute) until it is set again.
        self.open = threading.Event()
        self.open.set()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            self.open.wait(timeout=60)
            if self.delay:
                time.sleep(self.delay)
        if environ.get("REQUEST_METHOD") == "POST" and self.denied:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(body)
            form = parse_qs(body.decode("utf-8", "replace"))
            arn = (form.get("RoleArn") or [""])[0]
            if form.get("Action") == ["AssumeRole"] and arn.split(":")[4:5] and \
                    arn.split(":")[4] in self.denied:
                start_response("403 Forbidden", [("Content-Type", "text/xml")])
                return [_DENIED.format(arn=arn).encode()]
        return self._app(environ, start_response)


class OrgServer:
    def __init__(self) -> None:
        self.gate = Gate(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.gate, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        self.gate.denied.clear()
        self.gate.delay = 0.0
        self.gate.open.set()
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()


def org_options(url: str, **organization: Any) -> dict[str, Any]:
    """An aws source's options for the whole organisation on `url`."""
    return {"regions": [REGION], "endpoint_url": url, "max_attempts": 2,
            "organization": {"role_name": ROLE, "external_id": "annexa-test", **organization}}


@dataclass
class Organization:
    """An organisation made on the server, and clients into any of its accounts."""

    url: str
    id: str = ""
    root: str = ""
    units: dict[str, str] = field(default_factory=dict)  # OU name -> id
    accounts: dict[str, str] = field(default_factory=dict)  # account name -> id

    def client(self, service: str, account: str = MANAGEMENT, region: str = REGION) -> Any:
        if account == MANAGEMENT:
            return boto3.client(service, region_name=region, endpoint_url=self.url)
        sts = boto3.client("sts", region_name=REGION, endpoint_url=self.url)
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                RoleSessionName="seed")["Credentials"]
        return boto3.client(service, region_name=region, endpoint_url=self.url,
                            aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])

    def add_account(self, name: str, unit: str | None = None) -> str:
        org = self.client("organizations")
        account = org.create_account(Email=f"{name}@example.com",
                                     AccountName=name)["CreateAccountStatus"]["AccountId"]
        if unit is not None:
            if unit not in self.units:
                self.units[unit] = org.create_organizational_unit(
                    ParentId=self.root, Name=unit)["OrganizationalUnit"]["Id"]
            org.move_account(AccountId=account, SourceParentId=self.root,
                             DestinationParentId=self.units[unit])
        self.accounts[name] = account
        return account

    def guard(self, account: str) -> None:
        """GuardDuty on and a recording Config recorder in the account."""
        self.client("guardduty", account).create_detector(Enable=True)
        config = self.client("config", account)
        config.put_configuration_recorder(ConfigurationRecorder={
            "name": "default", "roleARN": f"arn:aws:iam::{account}:role/config",
            "recordingGroup": {"allSupported": True}})
        self.client("s3", account).create_bucket(Bucket=f"config-{account}")
        config.put_delivery_channel(DeliveryChannel={"name": "default",
                                                     "s3BucketName": f"config-{account}"})
        config.start_configuration_recorder(ConfigurationRecorderName="default")


def organization(url: str, members: dict[str, str | None]) -> Organization:
    """An organisation (all features) with `members` (name -> OU name or None)."""
    out = Organization(url)
    org = out.client("organizations")
    out.id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    out.root = org.list_roots()["Roots"][0]["Id"]
    for name, unit in members.items():
        out.add_account(name, unit)
    return out


def guard_organization(org: Organization) -> None:
    """Everything the organisation's checks ask for: an organisation trail logging, an SCP of
    its own attached, GuardDuty and Config in every account."""
    s3 = org.client("s3")
    s3.create_bucket(Bucket="org-trail")
    cloudtrail = org.client("cloudtrail")
    cloudtrail.create_trail(Name="org-trail", S3BucketName="org-trail", IsMultiRegionTrail=True,
                            IsOrganizationTrail=True)
    cloudtrail.start_logging(Name="org-trail")
    organizations = org.client("organizations")
    organizations.enable_policy_type(RootId=org.root, PolicyType="SERVICE_CONTROL_POLICY")
    policy = organizations.create_policy(
        Name="deny-leaving", Type="SERVICE_CONTROL_POLICY", Description="guardrail",
        Content='{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": '
                '"organizations:LeaveOrganization", "Resource": "*"}]}')["Policy"]
    organizations.attach_policy(PolicyId=policy["PolicySummary"]["Id"], TargetId=org.root)
    for account in [MANAGEMENT, *org.accounts.values()]:
        org.guard(account)
