"""Which CertCentral the tool talks to: the US and EU hosts, the base URLs allowed, loopback for the sandbox.

Stdlib and errors only: the CLI resolves a base URL from ``--region``/``--base-url``, the pipeline
checks it before a key is sent, and the report names the instance, all with these functions.
"""

from __future__ import annotations

import ipaddress
import types
from collections.abc import Mapping
from contextlib import suppress
from urllib.parse import urlsplit

from auditor.errors import ConfigurationError

__all__ = ["BASE_URL_HINT", "REGIONS", "check_base_url", "instance_label", "resolve_base_url"]

# Base URLs (§1.1): https://dev.digicert.com/en/certcentral-apis/services-api.html
REGIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "us": "https://www.digicert.com/services/v2",
        "eu": "https://certcentral.digicert.eu/services/v2",
    }
)

BASE_URL_HINT = f"Use region 'us' ({REGIONS['us']}) or 'eu' ({REGIONS['eu']}), or a base URL that ends in /services/v2."


def resolve_base_url(region: str | None, base_url: str | None) -> str:
    """Pick the Services API base URL: an explicit ``base_url`` wins, else the region preset.

    ``None`` for both means the US instance, where most accounts live (§1.1). The result has no
    trailing slash. Raises ConfigurationError for an unknown region or a URL that is not http(s).
    """
    if base_url is not None and base_url.strip():
        text = base_url.strip()
        parts = urlsplit(text)
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(f"The base URL {text!r} is not an http(s) URL.", hint=BASE_URL_HINT)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigurationError(
                "The base URL must not contain credentials, a query or a fragment.",
                hint=BASE_URL_HINT,
            )
        return text.rstrip("/")
    name = (region or "us").strip().lower()
    if name not in REGIONS:
        known = ", ".join(sorted(REGIONS))
        raise ConfigurationError(f"Unknown CertCentral region {region!r}; known regions: {known}.", hint=BASE_URL_HINT)
    return REGIONS[name]


def check_base_url(base_url: str) -> str:
    """Refuse plain HTTP except on loopback (the sandbox): an API key must not cross a network in clear."""
    parts = urlsplit(base_url)
    if parts.scheme == "http":
        host = parts.hostname or ""
        loopback = host == "localhost"
        with suppress(ValueError):
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        if not loopback:
            raise ConfigurationError(
                f"Refusing plain-HTTP base URL {base_url!r}: the API key would be sent unencrypted.",
                hint="Use https://, or --region us / --region eu. Plain HTTP is allowed only on loopback "
                "(the sandbox).",
            )
    return base_url


def instance_label(base_url: str) -> str:
    """The CertCentral instance a base URL names, for reports: US, Europe, the sandbox, or custom."""
    if base_url.rstrip("/") == REGIONS["us"]:
        return "US"
    if base_url.rstrip("/") == REGIONS["eu"]:
        return "Europe"
    if urlsplit(base_url).scheme == "http":
        return "sandbox (loopback)"  # check_base_url admits plain HTTP only on loopback
    return "custom"
