"""Small synchronous HTTP calls for engine lifecycles: health polls and probe completions.

A server on this machine is never reached through a proxy: urllib sends 127.0.0.1 through
`http_proxy` unless `no_proxy` names it, and a proxy that cannot reach the loopback would
make every /health poll fail until the startup timeout. Other hosts follow the environment's
proxy settings, as any HTTP client would.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.client import HTTPResponse
from urllib.parse import urlsplit

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_url(request: urllib.request.Request | str, timeout: float) -> HTTPResponse:
    """urlopen, but never through a proxy for a loopback address."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if is_loopback(urlsplit(url).hostname):
        return _DIRECT.open(request, timeout=timeout)
    # a new opener reads the proxy settings now (urlopen's shared one kept its first ones)
    return urllib.request.build_opener().open(request, timeout=timeout)


def get_status(url: str, headers: Mapping[str, str] | None = None,
               timeout: float = 2.0) -> int | None:
    """HTTP status of a GET, or None when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with open_url(request, timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


def post_json(url: str, body: dict, headers: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> tuple[int, str]:
    """(status, response text) of a JSON POST; raises OSError when nothing answers."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **dict(headers or {})})
    try:
        with open_url(request, timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except urllib.error.URLError as err:
        raise OSError(str(err.reason)) from None


def completion_ok(base_url: str, body: dict, headers: Mapping[str, str] | None = None,
                  timeout: float = 60.0) -> tuple[bool, str]:
    """Send one completion; (True, "") if it produced text, else (False, why)."""
    try:
        status, text = post_json(base_url + "/v1/completions", body, headers, timeout)
    except OSError as err:
        return False, str(err)
    if status != 200:
        return False, f"HTTP {status}: {text[:300]}"
    if "data:" in text:  # a streamed reply: it must carry a chunk with choices
        if (body.get("stream_options") or {}).get("include_usage") and '"usage"' not in text:
            return False, "no usage chunk, though include_usage was asked for"
        return ('"choices":[{' in text.replace(" ", "")), text[:300]
    try:
        reply = json.loads(text)
    except ValueError:
        return False, f"not JSON: {text[:200]}"
    return bool(reply.get("choices")), text[:300]
