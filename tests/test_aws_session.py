"""Service models trimmed to the operations the connector calls."""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
from botocore import xform_name

import connectors.aws
from connectors.aws.session import OPERATIONS, AwsSession
from connectors.aws.settings import Settings


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
