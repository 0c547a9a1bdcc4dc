# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etc/routes.conf: everything of Nginx's configuration that a release changes, rendered from one state.

Open-source Nginx has no runtime weights, so the weights, states and the canary candidate live in this
file, which the backend rewrites and reloads. Its first line holds the state as JSON (the persistence:
Nginx cannot tell weight 0 from drain or maint, all of which send it no new traffic), and the rest is
rendered from that state alone, so parsing the JSON back is reading what Nginx was given.

The colors are addressed by name (`<route>-<color>:<port>`), resolved per request through Docker's DNS
(`resolver` + a variable in proxy_pass): Nginx 1.22 resolves the names of upstream blocks only at load and
refuses to start when one is missing, while a color comes and goes (and moves address) between releases.
The weighted split is split_clients on a per-request key (the sticky cookie, when there is one).
"""

from __future__ import annotations

import json
import re

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import (
    COLORS,
    MAINTENANCE_HEADER,
    MAX_RETRY_AFTER,
    MAX_WEIGHT,
    STATES,
    LBError,
)

FILE = "routes.conf"
MAIN_FILE = "nginx.conf"
STATE_PREFIX = "# switchyard-nginx-state: "
# The internal listener (127.0.0.1 in the container, never published) that answers the loaded generation.
INTERNAL_PORT = 8081
# Where the lb role mounts etc/ in the container.
CONFIG_DIR = "/etc/nginx/switchyard"
GENERATION_PATH = "/_switchyard/generation"
HEALTH_URI = "/_switchyard/lb-health"
# The maintenance page (etc/maintenance.html, written by the lb role): a route in maintenance answers 503 with it.
MAINTENANCE_URI = "/_switchyard/maintenance.html"
MAINTENANCE_FILE = "maintenance.html"
DEFAULT_RETRY_AFTER = 30

# The lb role's rule for route names; a route name also makes a DNS alias and part of a variable name.
ROUTE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
PATH_RE = re.compile(r"/[A-Za-z0-9._~%/:@!*+,;=-]{0,255}")
HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._~%/:@!*+,;=?&-]{0,255}")
# Nginx's $cookie_<name> takes letters, digits and '_' only.
COOKIE_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
GENERATION_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class NginxConfigError(LBError):
    """The state or the file cannot be rendered or read."""


def check_route(route):
    if not isinstance(route, str) or not ROUTE_RE.fullmatch(route):
        raise InvalidParameters(
            f"route={route!r} is not a route name: use a lowercase letter or digit, then up to 47 of a-z 0-9 _ -"
        )
    return route


def var(route):
    """The part of Nginx variable names for route ('_' -> '__', '-' -> '_h': variables take no '-')."""
    return route.replace("_", "__").replace("-", "_h")


def check_state(state):
    """state, when every value that reaches the file is one the file can take; InvalidParameters otherwise."""
    if not isinstance(state, dict) or not isinstance(state.get("routes"), list) or not state["routes"]:
        raise InvalidParameters("the Nginx state needs at least one route")
    if state.get("canary") not in (None, *COLORS):
        raise InvalidParameters(f"canary={state.get('canary')!r}: use one of {', '.join(COLORS)}")
    cookie = state.get("sticky_cookie") or ""
    if cookie and not COOKIE_RE.fullmatch(cookie):
        raise InvalidParameters(
            f"switchyard_lb_sticky_cookie={cookie!r}: Nginx reads a cookie as $cookie_<name>, so use 1 to 64 of "
            "A-Z a-z 0-9 _"
        )
    retry_after = state.get("maintenance_retry_after", DEFAULT_RETRY_AFTER)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 1 <= retry_after <= MAX_RETRY_AFTER:
        raise InvalidParameters(
            f"maintenance_retry_after={retry_after!r}: a whole number of seconds from 1 to {MAX_RETRY_AFTER}"
        )
    if not GENERATION_RE.fullmatch(str(state.get("generation") or "")):
        raise InvalidParameters(f"generation={state.get('generation')!r}: 1 to 64 of A-Z a-z 0-9 . _ -")
    seen = set()
    for route in state["routes"]:
        check_route(route.get("name"))
        if route["name"] in seen:
            raise InvalidParameters(f"route {route['name']} is given twice")
        seen.add(route["name"])
        port = route.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidParameters(f"route {route['name']}: port={port!r}: an integer from 1 to 65535")
        if not HEALTH_PATH_RE.fullmatch(route.get("health_path") or ""):
            raise InvalidParameters(f"route {route['name']}: health_path={route.get('health_path')!r} is refused")
        if route.get("path_prefix") and not PATH_RE.fullmatch(route["path_prefix"]):
            raise InvalidParameters(f"route {route['name']}: path_prefix={route['path_prefix']!r} is refused")
        if not isinstance(route.get("maintenance", False), bool):
            raise InvalidParameters(f"route {route['name']}: maintenance={route.get('maintenance')!r}: true or false")
        for color in COLORS:
            check_weight(f"route {route['name']}: weights.{color}", route["weights"].get(color))
            check_color_state(f"route {route['name']}: states.{color}", route["states"].get(color))
    return state


def check_weight(where, weight):
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise InvalidParameters(f"{where}={weight!r}: a weight is an integer from 0 to {MAX_WEIGHT}")
    return weight


def check_color_state(where, state):
    if state not in STATES:
        raise InvalidParameters(f"{where}={state!r}: allowed values are {', '.join(STATES)}")
    return state


def split_lines(route):
    """The split_clients entries of a route: the colors that take new traffic (weight > 0 and ready), in a fixed
    order (green's range first, so raising green moves only clients from blue to green - sticky stays sticky).
    Nginx refuses 0% and a sum above 100%: the last color takes the rest (`*`), a color with weight never rounds
    to 0. No color: `* none` (answered 503)."""
    taking = [c for c in ("green", "blue") if route["weights"][c] > 0 and route["states"][c] == "ready"]
    total = sum(route["weights"][c] for c in taking)
    lines = []
    for color in taking[:-1]:
        percent = max(round(100.0 * route["weights"][color] / total, 2), 0.01)
        lines.append(f"{percent:.2f}% {color};")
    lines.append(f"* {taking[-1] if taking else 'none'};")
    return lines


def quoted(text):
    """text as one quoted Nginx token (checked values hold no quote, backslash, '$', brace or whitespace)."""
    if re.search(r"[\"'\\$\s{}]", text):
        raise NginxConfigError(f"refusing to render {text!r} into the Nginx configuration")
    return f'"{text}"'


def render(state):
    """The text of etc/routes.conf for state (checked first)."""
    check_state(state)
    cookie = state.get("sticky_cookie") or ""
    header = {k: state[k] for k in ("generation", "canary", "sticky_cookie")}
    retry_after = state.get("maintenance_retry_after", DEFAULT_RETRY_AFTER)
    if retry_after != DEFAULT_RETRY_AFTER:
        header["maintenance_retry_after"] = retry_after
    header["routes"] = [
        {
            "name": r["name"],
            "port": r["port"],
            "health_path": r["health_path"],
            "path_prefix": r.get("path_prefix") or "",
            "weights": {c: r["weights"][c] for c in COLORS},
            "states": {c: r["states"][c] for c in COLORS},
            # Only a route in maintenance says so: a file without any renders as it always did.
            **({"maintenance": True} if r.get("maintenance") else {}),
        }
        for r in state["routes"]
    ]
    out = [
        STATE_PREFIX + json.dumps(header, sort_keys=True, separators=(",", ":")),
        "# Written by switchyard.release (the lb role, nginx_upstream, traffic): do not edit; the line above is the",
        "# state this file is rendered from. Included by nginx.conf in the http block.",
        "",
        "# X-Canary from a trusted source ($sy_trusted, nginx.conf's geo): 1 is the candidate, blue/green a color.",
        f"map $sy_trusted $sy_candidate {{ default {quoted(state['canary'] or '')}; }}",
        'map "$sy_trusted:$http_x_canary" $sy_header {',
        '    default "";',
        '    "1:1" $sy_candidate;',
        '    "1:blue" blue;',
        '    "1:green" green;',
        "}",
        "# Only trusted sources' X-Canary reaches a color; everyone else's is removed.",
        'map $sy_trusted $sy_canary_forward { default ""; 1 $http_x_canary; }',
    ]
    if cookie:
        out += [
            f"# Sticky: the split is keyed on the {cookie} cookie; a client without one gets it (the request id).",
            f'map $cookie_{cookie} $sy_split_key {{ "" $request_id; default $cookie_{cookie}; }}',
            f'map $cookie_{cookie} $sy_set_cookie {{ "" "{cookie}=$request_id; Path=/; HttpOnly"; default ""; }}',
        ]
    else:
        out += [
            "map $sy_trusted $sy_split_key { default $request_id; }",
            'map $sy_trusted $sy_set_cookie { default ""; }',
        ]
    for route in state["routes"]:
        v, name = var(route["name"]), route["name"]
        reachable = [c for c in COLORS if route["states"][c] != "maint"]
        out += [
            "",
            f"# route {name}: " + ", ".join(f"{c} weight {route['weights'][c]} {route['states'][c]}" for c in COLORS),
            f'split_clients "${{sy_split_key}}" $sy_{v}_split {{',
            *(f"    {line}" for line in split_lines(route)),
            "}",
            "# The header reaches a color at weight 0 or in drain; not one in maint (that request is split).",
            f"map $sy_header $sy_{v}_color {{",
            f"    default $sy_{v}_split;",
            *(f"    {c} {c};" for c in reachable),
            "}",
            f'map $sy_header $sy_{v}_server {{ default ""; ' + " ".join(f"{c} {name}_{c};" for c in reachable) + " }",
        ]
    out += [
        "",
        "server {",
        "    listen 8080;",
        "    set $sy_route -;",
        "    set $sy_color -;",
        f"    location = {HEALTH_URI} {{",
        "        access_log off;",
        '        return 200 "OK\\n";',
        "    }",
    ]
    if any(r.get("maintenance") for r in state["routes"]):
        out += maintenance_location(retry_after)
    first = state["routes"][0]
    for route in state["routes"]:
        matches = [f"^~ {quoted(route['path_prefix'])}"] if route.get("path_prefix") else []
        if route is first:
            matches.append("/")
        for match in matches:
            out += location(route, match)
    out += [
        "}",
        "",
        "# Internal (127.0.0.1 in the container, not published): the generation the serving workers loaded.",
        "server {",
        f"    listen 127.0.0.1:{INTERNAL_PORT};",
        "    access_log off;",
        f"    location = {GENERATION_PATH} {{",
        f'        return 200 "{state["generation"]}\\n";',
        "    }",
        "    location / {",
        "        return 404;",
        "    }",
        "}",
        "",
    ]
    return "\n".join(out)


def maintenance_location(retry_after):
    """The page a route in maintenance answers (error_page keeps the 503), with Retry-After and the marker header."""
    return [
        f"    location = {MAINTENANCE_URI} {{",
        "        internal;",
        f"        alias {CONFIG_DIR}/{MAINTENANCE_FILE};",
        "        types { }",
        '        default_type "text/html; charset=utf-8";',
        f"        add_header Retry-After {int(retry_after)} always;",
        '        add_header Cache-Control "no-store" always;',
        f"        add_header {MAINTENANCE_HEADER} on always;",
        "    }",
    ]


def location(route, match):
    v, name = var(route["name"]), route["name"]
    if route.get("maintenance"):
        # Every request of the route - the header canary's too - answers the maintenance page.
        return [
            f"    location {match} {{",
            f"        set $sy_route {name};",
            "        set $sy_color maintenance;",
            f"        error_page 503 {MAINTENANCE_URI};",
            "        return 503;",
            "    }",
        ]
    return [
        f"    location {match} {{",
        f"        set $sy_route {name};",
        f"        set $sy_color $sy_{v}_color;",
        '        if ($sy_color = "none") {',
        "            return 503;",
        "        }",
        f"        add_header X-Switchyard-Server $sy_{v}_server always;",
        "        add_header Set-Cookie $sy_set_cookie;",
        "        proxy_set_header X-Canary $sy_canary_forward;",
        f"        proxy_pass http://{name}-$sy_color:{route['port']};",
        "    }",
    ]


def parse(text):
    """The state a routes.conf was rendered from; NginxConfigError when it has none."""
    first = (text or "").split("\n", 1)[0]
    if not first.startswith(STATE_PREFIX):
        raise NginxConfigError(f"{FILE} does not start with its state line ({STATE_PREFIX.strip()} ...)")
    try:
        state = json.loads(first[len(STATE_PREFIX) :])
        return check_state(state)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NginxConfigError(f"{FILE}: its state line cannot be read: {exc}") from exc


def find_route(state, route):
    for entry in state["routes"]:
        if entry["name"] == route:
            return entry
    raise InvalidParameters(
        f"route={route!r} is not a route of this Nginx; it has: {', '.join(r['name'] for r in state['routes'])}"
    )


def for_role(text, routes, initial_weights, sticky_cookie, generation, retry_after=DEFAULT_RETRY_AFTER):
    """The routes.conf the lb role writes: the routes as given, each keeping the weights and states the file
    holds (initial_weights, all ready, for a route new to it), the canary kept. text: the file in place or None.
    Returns the text in place when nothing changes (a re-run changes nothing)."""
    old = parse(text) if text else None
    kept = {r["name"]: r for r in (old or {}).get("routes", [])}
    state = {
        "generation": (old or {}).get("generation") or generation,
        "canary": (old or {}).get("canary"),
        "sticky_cookie": sticky_cookie or "",
        "maintenance_retry_after": int(retry_after),
        "routes": [],
    }
    for route in routes:
        previous = kept.get(route["name"])
        state["routes"].append(
            {
                "name": route["name"],
                "port": int(route["port"]),
                "health_path": route.get("health_path") or "/health",
                "path_prefix": route.get("path_prefix") or "",
                "weights": dict(previous["weights"]) if previous else {c: int(initial_weights[c]) for c in COLORS},
                "states": dict(previous["states"]) if previous else dict.fromkeys(COLORS, "ready"),
                # A route in maintenance stays so (a recreate under way, or one that failed: see docs/strategies.md).
                "maintenance": bool(previous.get("maintenance")) if previous else False,
            }
        )
    if text and render(state) == text:
        return text
    state["generation"] = generation
    return render(state)
