"""Service models trimmed to the operations the connector calls."""

from __future__ import annotations

import ast
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore import xform_name

import connectors.aws
from connectors.aws.session import OPERATIONS, AwsSession
from connectors.aws.settings import Settings
from tests.helpers import annexa, controls_json, write_config

ACCOUNT = "123456789012"  # moto's


def test_every_listed_operation_exists_in_botocore():
    loader = botocore.session.get_session().get_component("data_loader")
    for service, operations in OPERATIONS.items():
        known = set(loader.load_service_model(service, "service-2")["operations"])
        assert operations <= known, (service, operations - known)


def test_clients_have_the_listed_operations_and_only_those():
    session = AwsSession(Settings(regions=["eu-west-1"], endpoint_url="http://127.0.0.1:9"))
    for service, operations in OPERATIONS.items():
        client = session.client(service, "eu-west-1")
        assert set(client.meta.service_model.operation_names) == operations
        for operation in operations:
            assert callable(getattr(client, xform_name(operation)))
    # STS is not trimmed: botocore's credential providers call operations the connector does not.
    sts = session.client("sts", "eu-west-1").meta.service_model
    assert "AssumeRoleWithWebIdentity" in sts.operation_names


def test_the_connector_calls_no_operation_left_out():
    """Any attribute or string in the connector's code that names an operation of a trimmed
    service (client.get_bucket_policy, get_paginator("list_keys")) must be listed."""
    loader = botocore.session.get_session().get_component("data_loader")
    every = {xform_name(op) for service in OPERATIONS
             for op in loader.load_service_model(service, "service-2")["operations"]}
    listed = {xform_name(op) for operations in OPERATIONS.values() for op in operations}
    named: set[str] = set()
    for path in Path(connectors.aws.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                named.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                named.add(node.value)
    assert named & every <= listed, sorted((named & every) - listed)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_aws_endpoint_url_from_the_environment_is_honoured_as_endpoint_url(
        tmp_path, moto_url, capsys, monkeypatch, host):
    """botocore's own endpoint setting (AWS_ENDPOINT_URL) with no endpoint_url in the source:
    S3 Control reaches the emulator without the account id prefixed to its host."""
    url = moto_url.replace("127.0.0.1", host)
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
    s3control = boto3.client("s3control", region_name="us-east-1", endpoint_url=url)
    s3control.meta.events.register("before-sign.s3-control", lambda request, **_: setattr(
        request, "url", request.url.replace(f"://{ACCOUNT}.", "://", 1)))
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=block)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", moto_url,
                          endpoint_url=None, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    assert "error:" not in out and "complete" in out, out
    checks = {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]}
    assert checks["aws.s3.account_public_access_block_enabled"]["status"] == "pass"
