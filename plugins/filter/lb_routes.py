# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lb_routes: the routes (and the settings) the lb role renders into haproxy.cfg and compose.yaml, checked.

Both files are rendered from these values as they are: a newline, a quote, a brace or a '#' in one would
end its line, its quoted string or its ACL and start a directive of the caller's choosing (`haproxy -c`
checks the syntax, not the intent). Role argument specs check types, not characters, so every value is
held here to the characters its place in the file can take, and refused naming its variable otherwise.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError

VARIABLE = "switchyard_lb_routes"
MAX_PATH_LENGTH = 256

# A route is a DNS label part (<name>-blue, <name>-green) and an HAProxy name part (be_<name>, <name>_blue).
ROUTE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
ROUTE_NAME_RULE = "a lowercase letter or digit, then up to 47 of a-z 0-9 _ - (such as api or web_v2)"
# RFC 3986 path characters, without the ones HAProxy's parser reads (quotes, '#', '$', '\\', braces, spaces).
PATH_CHARS = r"A-Za-z0-9._~%/:@!*+,;=-"
PATH_RE = re.compile(rf"/[{PATH_CHARS}]{{0,{MAX_PATH_LENGTH - 1}}}")
PATH_RULE = f"'/' then up to {MAX_PATH_LENGTH - 1} of A-Z a-z 0-9 . _ ~ % / : @ ! * + , ; = -"
# The health check also takes a query string.
HEALTH_PATH_RE = re.compile(rf"/[{PATH_CHARS}?&]{{0,{MAX_PATH_LENGTH - 1}}}")
HEALTH_PATH_RULE = PATH_RULE + " ? &"
# RFC 6265 token characters, without '#', "'" and '$' (a comment, a quote, a variable to HAProxy).
COOKIE_RE = re.compile(r"[A-Za-z0-9!%&*+.^_`|~-]{1,64}")
COOKIE_RULE = "empty (no sticky sessions), or 1 to 64 of A-Z a-z 0-9 ! % & * + . ^ _ ` | ~ -"
# Rendered inside a double-quoted string: nothing that ends it, escapes or expands in it, or ends the line.
LOG_FORMAT_FORBIDDEN_RE = re.compile(r'["\\$\x00-\x1f\x7f]')
LOG_FORMAT_RULE = "a non-empty line of at most 1024 characters without '\"', '\\', '$' or control characters"
# HAProxy's time format.
TIME_RE = re.compile(r"[0-9]{1,9}(us|ms|s|m|h|d)?")
TIME_RULE = "a number with an optional unit us, ms, s, m, h or d (such as 500ms, 30s, 1m)"

DIGITS_RE = re.compile(r"[0-9]{1,10}")

# Rendered into compose.yaml and the validation's `docker run` arguments.
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
IMAGE_RULE = "an image reference (registry/repository:tag or @sha256:digest: letters, digits and . _ / : @ -)"
DIR_RE = re.compile(r"/[A-Za-z0-9._/-]{0,254}")
DIR_RULE = (
    "an absolute path of letters, digits and . _ / -, at least two levels deep, no '..' component and not a system "
    "directory (such as /var/lib/switchyard/shop/lb)"
)
SYSTEM_DIRS = {"/usr/local", "/usr/lib", "/usr/share", "/var/lib", "/var/run", "/var/log", "/var/cache", "/home/root"}
PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
PROJECT_RULE = "a Compose project name: lowercase letters, digits, _ and -, starting with a letter or digit"

TIMES = (
    "switchyard_lb_timeout_connect",
    "switchyard_lb_timeout_client",
    "switchyard_lb_timeout_server",
    "switchyard_lb_timeout_check",
    "switchyard_lb_check_inter",
    "switchyard_lb_resolver_hold",
    "switchyard_lb_resolver_hold_unanswered",
)
COUNTS = ("switchyard_lb_check_fall", "switchyard_lb_check_rise", "switchyard_lb_maxconn")


def refuse(name, value, rule):
    raise AnsibleFilterError(f"{name}={value!r} is refused: use {rule}")


def matching(name, value, pattern, rule):
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        refuse(name, value, rule)
    return value


def integer(name, value, low, high):
    """An int (or its decimal string, as -e and surveys pass it) from low to high."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not DIGITS_RE.fullmatch(str(value)):
        refuse(name, value, f"an integer from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        refuse(name, value, f"an integer from {low} to {high}")
    return number


def check_route(index, route):
    where = f"{VARIABLE}[{index}]"
    if not isinstance(route, dict):
        refuse(where, route, "a dict with name, port and optionally health_path and path_prefix")
    unknown = sorted(set(route) - {"name", "port", "health_path", "path_prefix"})
    if unknown:
        raise AnsibleFilterError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; use name, port, health_path, path_prefix"
        )
    checked = {
        "name": matching(f"{where}.name", route.get("name"), ROUTE_NAME_RE, ROUTE_NAME_RULE),
        "port": integer(f"{where}.port", route.get("port"), 1, 65535),
        "health_path": matching(
            f"{where}.health_path", route.get("health_path", "/health"), HEALTH_PATH_RE, HEALTH_PATH_RULE
        ),
    }
    if route.get("path_prefix") not in (None, ""):
        checked["path_prefix"] = matching(f"{where}.path_prefix", route["path_prefix"], PATH_RE, PATH_RULE)
    return checked


def check_settings(settings):
    """The other values the lb role renders; each is checked only when given (keys are variable names)."""
    for name in TIMES:
        if name in settings:
            matching(name, settings[name], TIME_RE, TIME_RULE)
    for name in COUNTS:
        if name in settings:
            integer(name, settings[name], 1, 10_000_000)
    cookie = settings.get("switchyard_lb_sticky_cookie")
    if cookie not in (None, ""):
        matching("switchyard_lb_sticky_cookie", cookie, COOKIE_RE, COOKIE_RULE)
    if "switchyard_lb_log_format" in settings:
        log_format = settings["switchyard_lb_log_format"]
        if (
            not isinstance(log_format, str)
            or not log_format.strip()
            or len(log_format) > 1024
            or LOG_FORMAT_FORBIDDEN_RE.search(log_format)
        ):
            refuse("switchyard_lb_log_format", log_format, LOG_FORMAT_RULE)
    weights = settings.get("switchyard_lb_initial_weights")
    if weights is not None:
        if not isinstance(weights, dict) or set(weights) != {"blue", "green"}:
            refuse("switchyard_lb_initial_weights", weights, "a dict of blue and green, each a weight from 0 to 256")
        for color, weight in weights.items():
            integer(f"switchyard_lb_initial_weights.{color}", weight, 0, 256)
    for name in ("switchyard_lb_bind_address", "switchyard_lb_metrics_bind_address"):
        if name in settings:
            address = settings[name]
            try:
                ipaddress.ip_address(address if isinstance(address, str) else "")
            except ValueError:
                refuse(name, address, "an IPv4 or IPv6 address, such as 0.0.0.0 or 127.0.0.1")
    if "switchyard_lb_image" in settings:
        matching("switchyard_lb_image", settings["switchyard_lb_image"], IMAGE_RE, IMAGE_RULE)
    if "switchyard_lb_dir" in settings:
        lb_dir = matching("switchyard_lb_dir", settings["switchyard_lb_dir"], DIR_RE, DIR_RULE)
        parts = [part for part in lb_dir.split("/") if part]
        # The role hands the directory's run/ and etc/ to the LB's uid: never a system directory of the host.
        if ".." in parts or len(parts) < 2 or lb_dir.rstrip("/") in SYSTEM_DIRS:
            refuse("switchyard_lb_dir", lb_dir, DIR_RULE)
    if "switchyard_lb_project" in settings:
        matching("switchyard_lb_project", settings["switchyard_lb_project"], PROJECT_RE, PROJECT_RULE)
    if "switchyard_lb_public_port" in settings:
        integer("switchyard_lb_public_port", settings["switchyard_lb_public_port"], 1, 65535)
    if "switchyard_lb_metrics_port" in settings:
        metrics = integer("switchyard_lb_metrics_port", settings["switchyard_lb_metrics_port"], 0, 65535)
        if metrics and str(metrics) == str(settings.get("switchyard_lb_public_port")):
            refuse(
                "switchyard_lb_metrics_port", metrics, "0 (no exporter) or a port other than switchyard_lb_public_port"
            )


def lb_routes(routes, settings=None):
    """The routes, checked, with health_path filled in and port an int; settings ({variable: value}) checked too.

    Raises AnsibleFilterError naming the variable (and route field) and the characters allowed."""
    if not isinstance(routes, (list, tuple)) or not routes:
        refuse(VARIABLE, routes, "a non-empty list of routes (name, port, health_path, path_prefix)")
    checked = [check_route(index, route) for index, route in enumerate(routes)]
    names = [r["name"] for r in checked]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AnsibleFilterError(f"{VARIABLE}: each route name once (given more than once: {', '.join(twice)})")
    check_settings(settings or {})
    return checked


class FilterModule:
    def filters(self):
        return {"lb_routes": lb_routes}
