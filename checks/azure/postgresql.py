"""Azure Database for PostgreSQL flexible servers: clients must connect over TLS."""

from __future__ import annotations

from typing import Any

from checks.azure.properties import MISSING, missing, prop
from checks.registry import check
from collector.model import Verdict, failed, passed


@check(
    "azure.postgresql.flexible_server_requires_secure_transport",
    resource="azure.postgresql.flexible_server",
    title="PostgreSQL flexible servers refuse connections without TLS",
    controls={"A.8.24": "credentials and query results never cross the network in clear "
                        "text"},
    severity="high",
    remediation="Set the server parameter require_secure_transport to ON.",
    needs=("require_secure_transport",),
)
def flexible_server_requires_secure_transport(server: dict[str, Any]) -> Verdict:
    value = prop(server.get("require_secure_transport") or {}, "value")
    if value is MISSING:
        return missing("value", under="require_secure_transport.properties")
    if str(value).lower() == "on":
        return passed("require_secure_transport is on")
    return failed(f"require_secure_transport is {value}: clear-text connections are accepted")
