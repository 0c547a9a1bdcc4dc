# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance page every LB kind answers while a route is in maintenance (a recreate's outage).

The lb role deploys it with the LB's configuration (HAProxy reads the file when it loads, Nginx serves it, Traefik's
middleware carries it); the traffic module only turns it on and off. Checked here once for every kind: Retry-After a
number of seconds (it goes into configuration lines as it is), the body text that fits in one HAProxy buffer.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    MAINTENANCE_HEADER,
    MAINTENANCE_STATUS,
    MAX_RETRY_AFTER,
)

# HAProxy's `http-request return ... file` answers from one buffer (tune.bufsize, 16 kB, headers included).
MAX_BODY_BYTES = 8192
DEFAULT_BODY = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body>
<h1>Down for maintenance</h1>
<p>We are updating this service. It will be back in a moment; please try again shortly.</p>
</body>
</html>
"""


def maintenance_page(body="", body_file_content=None, retry_after=30):
    """{"body", "retry_after"}: the file's content over body, the built-in page for neither; InvalidParameters naming
    the variable otherwise."""
    if isinstance(retry_after, str) and retry_after.strip().isdigit():
        retry_after = int(retry_after)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 1 <= retry_after <= MAX_RETRY_AFTER:
        raise InvalidParameters(
            f"switchyard_maintenance_retry_after={retry_after!r}: a whole number of seconds from 1 to {MAX_RETRY_AFTER}"
        )
    name, text = "switchyard_maintenance_body", body
    if body_file_content not in (None, ""):
        name, text = "switchyard_maintenance_body_file", body_file_content
    if text in (None, ""):
        text = DEFAULT_BODY
    if not isinstance(text, str):
        raise InvalidParameters(f"{name}: the page is text (HTML), got {type(text).__name__}")
    if "\x00" in text:
        raise InvalidParameters(f"{name}: the page holds a NUL character")
    size = len(text.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise InvalidParameters(
            f"{name}: the page is {size} bytes; at most {MAX_BODY_BYTES} (HAProxy answers it from one buffer) - "
            "link to larger assets instead"
        )
    return {"body": text, "retry_after": retry_after}


def is_page(status, headers):
    """Whether an answer is the maintenance page (503, Retry-After and the marker header), not any other 503."""
    headers = {str(k).lower(): v for k, v in (headers or {}).items()}
    return (
        status == MAINTENANCE_STATUS
        and str(headers.get(MAINTENANCE_HEADER.lower(), "")).lower() == "on"
        and str(headers.get("retry-after", "")).isdigit()
    )


def ask(url, timeout=5.0):
    """{url, status, page, retry_after, error} of one GET through the LB (no redirect followed, no proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    request = urllib.request.Request(url, headers={"User-Agent": "switchyard-maintenance-check"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            status, headers = resp.status, dict(resp.headers.items())
            resp.read()
    except urllib.error.HTTPError as exc:
        status, headers = exc.code, dict(exc.headers.items())
        exc.read()
    except (OSError, http.client.HTTPException) as exc:
        return {"url": url, "status": None, "page": False, "retry_after": None, "error": str(exc)[:300]}
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        "url": url,
        "status": status,
        "page": is_page(status, headers),
        "retry_after": lowered.get("retry-after"),
        "error": None,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def check_url(url, where):
    """An http(s) URL with a host; InvalidParameters naming where otherwise."""
    parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidParameters(
            f"{where}={url!r}: an http:// or https:// URL of the LB, such as http://127.0.0.1:8080/"
        )
    return url
