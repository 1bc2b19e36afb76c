"""App Service apps (web and function apps): served over HTTPS only, with current TLS, and
deployed without clear-text FTP."""

from __future__ import annotations

from typing import Any

from checks.azure.properties import MISSING, missing, prop
from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "azure.web.site"
MODERN_TLS = ("1.2", "1.3")
NO_PLAIN_FTP = ("FtpsOnly", "Disabled")


def _config(site: dict[str, Any], name: str) -> Any:
    return prop(site.get("site_config") or {}, name)


@check(
    "azure.web.app_https_only",
    resource=KIND,
    title="App Service apps redirect HTTP to HTTPS",
    controls={"A.8.24": "requests and responses, cookies and tokens included, travel "
                        "encrypted"},
    severity="high",
    remediation="Turn on 'HTTPS Only' (httpsOnly) for the app.",
)
def app_https_only(site: dict[str, Any]) -> Verdict:
    https_only = prop(site, "httpsOnly")
    if https_only is MISSING:
        return missing("httpsOnly")
    return passed("HTTPS only") if https_only is True else failed("plain HTTP is served")


@check(
    "azure.web.app_min_tls_1_2",
    resource=KIND,
    title="App Service apps refuse TLS versions older than 1.2",
    controls={"A.8.24": "clients connect with current TLS, not 1.0 or 1.1 with their known "
                        "weaknesses"},
    severity="medium",
    remediation="Set the app's minimum TLS version (siteConfig minTlsVersion) to 1.2.",
    needs=("site_config",),
)
def app_min_tls_1_2(site: dict[str, Any]) -> Verdict:
    version = _config(site, "minTlsVersion")
    if version is MISSING:
        return missing("minTlsVersion", under="site_config.properties")
    if version in MODERN_TLS:
        return passed(f"minimum TLS version {version}")
    return failed(f"minimum TLS version {version}")


@check(
    "azure.web.app_plain_ftp_disabled",
    resource=KIND,
    title="App Service apps accept no clear-text FTP deployments",
    controls={"A.8.24": "deployment credentials and code are not sent over the network "
                        "unencrypted"},
    severity="medium",
    remediation="Set the app's FTP state (siteConfig ftpsState) to FtpsOnly, or Disabled if "
                "FTP is not used.",
    needs=("site_config",),
)
def app_plain_ftp_disabled(site: dict[str, Any]) -> Verdict:
    state = _config(site, "ftpsState")
    if state is MISSING:
        return missing("ftpsState", under="site_config.properties")
    if state in NO_PLAIN_FTP:
        return passed(f"FTP state {state}")
    return failed(f"FTP state {state}: clear-text FTP is accepted")
