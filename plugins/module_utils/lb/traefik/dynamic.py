# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Traefik's dynamic configuration of one route, generated from Python data (never from text templates).

The lb role writes the route's settings (etc/switchyard.json: port, health path, path prefix, trusted
sources, sticky cookie); each route then has one file in the watched directory etc/dynamic/,
route-<route>.yml, rendered here from those settings and the route's record - {color: {weight, state}} and
the canary candidate - which the file carries on its first line (a YAML comment, so Traefik never reads it).

What Traefik loads shows every state, so the API alone tells it back:
- ready: the color is a child of the weighted service <route> with its weight (0 allowed: Traefik keeps it
  listed and sends it nothing);
- drain: not a child of the weighted service (no new traffic), but its header router <route>-canary-<color>
  is there (X-Canary still reaches it, as in HAProxy);
- maint: neither: nothing reaches it (and Traefik does not even check it: its service is unused).
The weight a drained or maint color comes back with is the record's.

Traefik builds - and health-checks - only the services a router uses. So that a color out of the weighted service
(drain) stays checked whether or not trusted sources give it a header router, every color not in maint also has a
check router <route>.health-<color> on the internal entrypoint `traefik` (127.0.0.1 in the container, never
published) whose rule no request can match: a shift that lifts a drained color Traefik has checked UP needs no
weight-0 step first (backend.py).
"""

from __future__ import annotations

import json
import re
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    COLORS,
    MAINTENANCE_HEADER,
    MAINTENANCE_STATUS,
    MAX_RETRY_AFTER,
    MAX_WEIGHT,
    STATES,
    LBError,
)

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError:  # reported by dump_route, the one place that writes YAML
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()

RECORD_PREFIX = "# switchyard-record: "
BASE_FILE = "switchyard.yml"
CANARY_HEADER = "X-Canary"
SERVER_HEADER = "X-Switchyard-Server"
# The lb role's route names (filter lb_routes): a DNS label part (<route>-<color>) and a Traefik name part.
ROUTE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
ROUTE_RULE = "a lowercase letter or digit, then up to 47 of a-z 0-9 _ -"
# What may stand inside a backquoted rule string or a URL path (lb_routes' rule, without a backquote).
PATH_RE = re.compile(r"/[A-Za-z0-9._~%/:@!*+,;=?&-]{0,255}")
COOKIE_RE = re.compile(r"[A-Za-z0-9!%&*+.^_`|~-]{1,64}")
INTERVAL_RE = re.compile(r"[0-9]{1,6}(ms|s|m)")
# Priorities (the health endpoint of switchyard.yml has 100000): the canary header routers, then the routes by
# path prefix, then the default route.
# The maintenance page: the lb role's local plugin (etc/plugins-local/, Traefik has no static response of its own)
# answers every request of a route in maintenance; its settings (Retry-After, body) come from etc/switchyard.json.
MAINTENANCE_PLUGIN = "switchyardmaintenance"
PRIORITY_CANARY = 50000
PRIORITY_PREFIX = 20000
# The check routers: on the loopback-only entrypoint of the API, matching only a client address of TEST-NET-1
# (RFC 5737, never routed), which a connection to 127.0.0.1 cannot have - they exist only so Traefik checks the
# color; their name has a dot, which no route name has, so no route's router can take it.
CHECK_ENTRYPOINT = "traefik"
CHECK_RULE = "ClientIP(`192.0.2.1/32`)"


def check_route_name(route):
    if not isinstance(route, str) or not ROUTE_RE.fullmatch(route):
        raise InvalidParameters(f"route={route!r} is not a route name: use {ROUTE_RULE}")
    return route


def file_name(route):
    return f"route-{check_route_name(route)}.yml"


def service_name(route, color):
    return f"{route}-{color}"


def header_router(route, color):
    return f"{route}-canary-{color}"


def candidate_router(route):
    return f"{route}-canary"


def check_router(route, color):
    return f"{route}.health-{color}"


def check_settings(settings):
    """The lb role's etc/switchyard.json, refused naming the field when something in it could not go into a rule,
    a URL or a name as it is (it is written by the role from checked variables: this is defence in depth)."""
    if not isinstance(settings, dict) or not isinstance(settings.get("routes"), list) or not settings["routes"]:
        raise InvalidParameters("the Traefik settings hold no routes (etc/switchyard.json is written by the lb role)")
    for index, route in enumerate(settings["routes"]):
        where = f"settings routes[{index}]"
        check_route_name(route.get("name"))
        port = route.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidParameters(f"{where}.port={port!r}: a port from 1 to 65535")
        for key in ("health_path", "path_prefix"):
            value = route.get(key)
            if value not in (None, "") and not (isinstance(value, str) and PATH_RE.fullmatch(value)):
                raise InvalidParameters(f"{where}.{key}={value!r}: a path of URL characters, no backquote")
    for cidr in settings.get("trusted") or []:
        if not isinstance(cidr, str) or not re.fullmatch(r"[0-9A-Fa-f.:/]{2,49}", cidr):
            raise InvalidParameters(f"settings trusted: {cidr!r} is not a CIDR")
    page = settings.get("maintenance") or {}
    retry_after = page.get("retry_after", 30)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 1 <= retry_after <= MAX_RETRY_AFTER:
        raise InvalidParameters(
            f"settings maintenance.retry_after={retry_after!r}: whole seconds from 1 to {MAX_RETRY_AFTER}"
        )
    if not isinstance(page.get("body", ""), str):
        raise InvalidParameters("settings maintenance.body: the page's HTML, a string")
    cookie = settings.get("sticky_cookie") or ""
    if cookie and not COOKIE_RE.fullmatch(cookie):
        raise InvalidParameters(f"settings sticky_cookie={cookie!r}: 1 to 64 cookie token characters")
    for key, default in (("check_interval", "1s"), ("check_timeout", "2s"), ("throttle", "2s")):
        value = settings.get(key, default)
        if not isinstance(value, str) or not INTERVAL_RE.fullmatch(value):
            raise InvalidParameters(f"settings {key}={value!r}: a duration with a unit ms, s or m, such as 1s")
    return settings


def route_settings(settings, route):
    for index, item in enumerate(settings["routes"]):
        if item["name"] == route:
            return index, item
    known = ", ".join(r["name"] for r in settings["routes"])
    raise InvalidParameters(f"route={route!r} is not a route of this LB; it has: {known}")


def check_record(record):
    """record: {"colors": {color: {weight, state}}, "canary": color or None}, checked."""
    colors = record.get("colors") if isinstance(record, dict) else None
    if not isinstance(colors, dict) or set(colors) != set(COLORS):
        raise InvalidParameters(f"a route record holds both colors: {record!r}")
    for color, view in colors.items():
        weight = view.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise InvalidParameters(f"weights.{color}={weight!r}: a weight is an integer from 0 to {MAX_WEIGHT}")
        if view.get("state") not in STATES:
            raise InvalidParameters(f"states.{color}={view.get('state')!r}: allowed values are {', '.join(STATES)}")
    if record.get("canary") not in (None,) + COLORS:
        raise InvalidParameters(f"canary={record.get('canary')!r}: allowed values are {', '.join(COLORS)}")
    if not isinstance(record.get("maintenance", False), bool):
        raise InvalidParameters(f"maintenance={record.get('maintenance')!r}: true or false")
    return record


def maintenance_middleware(route):
    return f"{route}-maintenance"


def initial_record(weights, canary=None):
    return {"colors": {c: {"weight": int(weights[c]), "state": "ready"} for c in COLORS}, "canary": canary}


def read_record(text):
    """The record on a route file's first line; None when text is None; InvalidParameters when unreadable."""
    if text is None:
        return None
    first = text.split("\n", 1)[0]
    if not first.startswith(RECORD_PREFIX):
        raise InvalidParameters(f"the route file has no record line ({RECORD_PREFIX.strip()}): {first[:200]!r}")
    try:
        record = json.loads(first[len(RECORD_PREFIX) :])
    except ValueError as exc:
        raise InvalidParameters(f"the route file's record line is not JSON: {exc}") from exc
    return check_record(record)


def rule(base, *more):
    return " && ".join((base,) + more)


def render_route(settings, route, record):
    """{"http": {...}} for one route: its weighted service and color services, its routers and middlewares."""
    check_settings(settings)
    check_record(record)
    index, config = route_settings(settings, route)
    prefix = config.get("path_prefix") or ""
    # The first route takes what no prefix takes (HAProxy's default_backend); routes with a prefix, theirs.
    bases = []
    if prefix:
        bases.append((f"PathPrefix(`{prefix}`)", PRIORITY_PREFIX - index, ""))
    if index == 0:
        bases.append(("PathPrefix(`/`)", 1, "-default" if prefix else ""))
    colors = record["colors"]
    interval = settings.get("check_interval", "1s")
    strip = f"{route}-strip-canary"
    services = {
        route: {
            "weighted": {
                # Children in drain or maint are not listed: no new traffic. healthCheck: {} makes the weighted
                # service follow its children's health, so a DOWN color gets nothing.
                "services": [
                    {"name": service_name(route, c), "weight": colors[c]["weight"]}
                    for c in COLORS
                    if colors[c]["state"] == "ready"
                ],
                "healthCheck": {},
            }
        }
    }
    if settings.get("sticky_cookie"):
        services[route]["weighted"]["sticky"] = {
            "cookie": {"name": settings["sticky_cookie"], "httpOnly": True, "sameSite": "lax"}
        }
    for color in COLORS:
        services[service_name(route, color)] = {
            "loadBalancer": {
                # Docker's DNS resolves the alias per connection: an absent color is just DOWN.
                "servers": [{"url": f"http://{route}-{color}:{config['port']}"}],
                "healthCheck": {
                    "path": config.get("health_path") or "/health",
                    "interval": interval,
                    "timeout": settings.get("check_timeout", "2s"),
                },
                "passHostHeader": True,
            }
        }
    middlewares = {strip: {"headers": {"customRequestHeaders": {CANARY_HEADER: ""}}}}
    routers = {}
    for base, priority, suffix in bases:
        routers[f"{route}{suffix}"] = {
            "entryPoints": ["web"],
            "rule": base,
            "priority": priority,
            "service": route,
            # Anyone's X-Canary is removed here: only the header routers below (trusted sources) keep it.
            "middlewares": [strip],
        }
    trusted = settings.get("trusted") or []
    if trusted:
        # Traefik 3's ClientIP takes one range: several are or-ed.
        source = " || ".join(f"ClientIP(`{cidr}`)" for cidr in trusted)
        source = f"({source})" if len(trusted) > 1 else source
        reachable = [c for c in COLORS if colors[c]["state"] != "maint"]
        for color in reachable:
            middlewares[f"{route}-{color}-server"] = {
                "headers": {"customResponseHeaders": {SERVER_HEADER: f"{route}_{color}"}}
            }
        for base, priority, suffix in bases:
            boost = PRIORITY_CANARY + priority
            for color in reachable:
                routers[f"{header_router(route, color)}{suffix}"] = {
                    "entryPoints": ["web"],
                    "rule": rule(base, source, f"Header(`{CANARY_HEADER}`, `{color}`)"),
                    "priority": boost,
                    "service": service_name(route, color),
                    "middlewares": [f"{route}-{color}-server"],
                }
            candidate = record.get("canary")
            if candidate in reachable:
                routers[f"{candidate_router(route)}{suffix}"] = {
                    "entryPoints": ["web"],
                    "rule": rule(base, source, f"Header(`{CANARY_HEADER}`, `1`)"),
                    "priority": boost,
                    "service": service_name(route, candidate),
                    "middlewares": [f"{route}-{candidate}-server"],
                }
    if record.get("maintenance"):
        # Every router of the route (the header canary's too) answers the page first; the services stay in use, so
        # Traefik keeps checking the colors' health and the route resumes on a color it already sees UP.
        page = settings.get("maintenance") or {}
        middlewares[maintenance_middleware(route)] = {
            "plugin": {
                MAINTENANCE_PLUGIN: {
                    "status": MAINTENANCE_STATUS,
                    "retryAfter": page.get("retry_after", 30),
                    "header": MAINTENANCE_HEADER,
                    "body": page.get("body") or "Down for maintenance\n",
                }
            }
        }
        for router in routers.values():
            router["middlewares"] = [maintenance_middleware(route)] + router["middlewares"]
    for color in COLORS:
        if colors[color]["state"] != "maint":
            routers[check_router(route, color)] = {
                "entryPoints": [CHECK_ENTRYPOINT],
                "rule": CHECK_RULE,
                "priority": 1,
                "service": service_name(route, color),
            }
    return {"http": {"routers": routers, "services": services, "middlewares": middlewares}}


def dump_route(settings, route, record):
    """The route file's text: the record line, then the YAML Traefik reads (generated by PyYAML, read back)."""
    data = render_route(settings, route, record)
    if not HAS_YAML:
        raise LBError(missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    text = yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    if yaml.safe_load(text) != data:  # what Traefik will parse is what was meant
        raise InvalidParameters(f"the dynamic configuration of route {route} does not read back as written")
    line = json.dumps(record, sort_keys=True, separators=(", ", ": "))
    return f"{RECORD_PREFIX}{line}\n# Written by switchyard.release (traefik_weight): do not edit by hand.\n{text}"
