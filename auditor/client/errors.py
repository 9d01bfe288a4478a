"""Error translation: CertCentral's answers and httpx's failures into the typed errors a person can act on.

Every message names what happened and the next step (§5.2, https://dev.digicert.com/errors/);
none carries the API key (callers pass ``redact``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from auditor.client.base_url import BASE_URL_HINT
from auditor.client.pacing import Retryable
from auditor.errors import (
    ApiBadResponseError,
    ApiConnectionError,
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    PermissionDeniedError,
)
from auditor.parsing import KEY_CHECK_ENDPOINT, LIST_PATHS

KEY_ECHOED_MESSAGE = "CertCentral or a proxy echoed the API key; nothing was stored"

AUTH_HINT = (
    "Check that the key was copied in full, without spaces, and that it is still active under "
    "Automation → API Keys in CertCentral."
)
PERMISSION_HINT = (
    "The key's restriction is too narrow to read users (for example an Orders-only key), or its "
    "user's role may not list users. Create a View Only or User Management key linked to an "
    "unrestricted Administrator; if you cannot create keys, ask an account administrator."
)


class KeyEchoedError(ApiBadResponseError):
    """An answer carried the API key (a proxy page echoing request headers, say); nothing is kept (exit 5)."""


def parse_errors(body: bytes) -> tuple[tuple[str, str], ...]:
    """(code, message) pairs from an error body, or () when it is not the documented JSON.

    ``errors`` is documented as a list (§5.1, https://dev.digicert.com/errors/), but a published
    client's fixture has it as one object (riboseinc/digicert ``spec/fixtures/errors.json``), and
    the CDN in front of the API answers HTML; all three must work.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(data, Mapping):
        return ()
    errors = data.get("errors")
    if isinstance(errors, Mapping):
        errors = [errors]
    if not isinstance(errors, list):
        return ()
    pairs: list[tuple[str, str]] = []
    for item in errors:
        if isinstance(item, Mapping):
            code, message = item.get("code"), item.get("message")
            pairs.append((code if isinstance(code, str) else "", message if isinstance(message, str) else ""))
        elif isinstance(item, str):
            pairs.append(("", item))
    return tuple(pairs)


def error_code(body: bytes) -> str:
    """The first error code in an error body, or ``""``."""
    return next((code for code, _ in parse_errors(body) if code), "")


def describe_body(response: httpx.Response) -> str:
    """A short, secret-free description of a body we could not read, for messages."""
    if not response.content:
        return "an empty body"
    content_type = response.headers.get("content-type", "no content type").split(";")[0].strip()
    return f"a body that is not JSON ({content_type}, {len(response.content)} bytes)"


def describe_transport_error(exc: httpx.RequestError) -> str:
    """What went wrong on the network, in a few words, for messages."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({exc or 'no detail'})"
    return f"{type(exc).__name__}: {exc or 'no detail'}"


def json_object(endpoint: str, response: httpx.Response) -> dict[str, Any]:
    """The answer's body as a JSON object, or ApiBadResponseError saying what came instead."""
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        raise ApiBadResponseError(
            f"CertCentral answered GET {endpoint} (HTTP {response.status_code}) with {describe_body(response)}.",
            hint="A proxy or CDN may have answered instead of the API; check the base URL and try again.",
        ) from None  # the decode error holds the whole body: nothing to add, and bulky
    if not isinstance(data, dict):
        raise ApiBadResponseError(
            f"CertCentral answered GET {endpoint} with JSON that is not an object ({type(data).__name__})."
        )
    return data


def error_for(endpoint: str, response: httpx.Response, *, base_url: str, redact: Callable[[str], str]) -> ApiError:
    """Translate a non-retryable answer into the typed error a person can act on (§5.2)."""
    status = response.status_code
    codes = parse_errors(response.content)
    code = next((c for c, _ in codes if c), "")
    message = next((m for _, m in codes if m), "")
    said = f" ({code}: {message})" if code and message else f" ({code or message})" if code or message else ""
    said = redact(said[:300])
    path = endpoint.split("?", 1)[0]
    if status in (401, 403):
        # An invalid key is 403 access_denied|access_denied_invalid_key, not 401, and no 401
        # is documented; older clients map 401 to "no valid key" (§5.2):
        # https://dev.digicert.com/errors/
        lowered = code.lower()
        if status == 403 and "missing_permission" in lowered:
            return PermissionDeniedError(
                f"CertCentral refused GET {endpoint}: the API key may not read users{said}.",
                hint=PERMISSION_HINT,
            )
        if (
            status == 401
            or "invalid_key" in lowered
            or lowered.startswith("access_denied")
            or path == KEY_CHECK_ENDPOINT
        ):
            return AuthenticationError(
                f"CertCentral rejected the API key (HTTP {status} on GET {endpoint}){said}.",
                hint=AUTH_HINT,
            )
        return PermissionDeniedError(
            f"CertCentral (or a proxy in front of it) refused GET {endpoint} with HTTP 403{said}.",
            hint=PERMISSION_HINT,
        )
    if status == 404:
        # not_found|route means a wrong path (§5.2); a list endpoint never 404s otherwise.
        if "route" in code.lower() or path in LIST_PATHS or path == KEY_CHECK_ENDPOINT:
            return ApiBadResponseError(
                f"CertCentral answered HTTP 404 for GET {endpoint}{said}: the base URL {base_url} is probably wrong.",
                hint=BASE_URL_HINT,
            )
        return ApiBadResponseError(f"CertCentral answered HTTP 404 for GET {endpoint}{said}.")
    if 300 <= status < 400:
        return ApiBadResponseError(
            f"CertCentral redirected GET {endpoint} (HTTP {status}); the base URL {base_url} is probably wrong.",
            hint=BASE_URL_HINT,
        )
    return ApiBadResponseError(f"CertCentral rejected GET {endpoint} with HTTP {status}{said}.")


def give_up(endpoint: str, exc: Retryable, attempts: int, *, base_url: str) -> ApiError:
    """The error after the last attempt of a retried GET failed."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if exc.rate_limited:
        return ApiUnavailableError(
            f"CertCentral kept rate limiting GET {endpoint} (HTTP 429) after {tries}.",
            hint="Another tool may be using the same API key; wait a few minutes and try again.",
        )
    if exc.status is not None:
        return ApiUnavailableError(
            f"CertCentral failed GET {endpoint} with {exc.reason} after {tries}.",
            hint="CertCentral may be down or in maintenance; try again later.",
        )
    return ApiConnectionError(
        f"Could not reach CertCentral for GET {endpoint}: {exc.reason}, after {tries}.",
        hint=f"Check the network, proxy, DNS and the base URL ({base_url}).",
    )


def too_big(endpoint: str, detail: str, *, max_body_bytes: int) -> ApiBadResponseError:
    """An answer larger than the byte cap."""
    return ApiBadResponseError(
        f"CertCentral's answer to GET {endpoint} is larger than the "
        f"{max_body_bytes / 1048576:.0f} MB limit for one answer ({detail}); it was not kept.",
        hint="A proxy or a compressed ('gzip bomb') body may be at fault; a real page of users is a few MB. "
        "Check the base URL and proxy settings, or pull with a smaller --page-size.",
    )


def past_deadline(endpoint: str, when: str, *, deadline: float) -> ApiUnavailableError:
    """The pull's deadline passed (or the next wait would end after it)."""
    return ApiUnavailableError(
        f"The pull reached its deadline of {deadline:.0f} s during GET {endpoint} ({when}); it was stopped.",
        hint="CertCentral or a proxy is answering too slowly; try again later, or allow more time "
        "with `auditor --deadline SECONDS pull`.",
    )


def rate_limit_budget_spent(endpoint: str, *, waited: float, cap: float) -> ApiUnavailableError:
    """One more 429 back-off would pass the pull's budget for rate-limit waits."""
    return ApiUnavailableError(
        f"CertCentral kept rate limiting GET {endpoint} (HTTP 429): this pull already waited "
        f"{waited:.0f} s on rate limits, and waits are capped at {cap:.0f} s per pull.",
        hint="Another tool may be using the same API key; wait a few minutes and try again.",
    )
