# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release needs of its load balancer, whatever the kind.

An application has routes (its routed services: api, web...) and two colors per route. A backend
(lb/haproxy/, later lb/nginx/ and lb/traefik/) maps a route and a color to its own names and
implements these operations; the traffic and rollback modules, and the roles through them, only
ever speak of routes, colors, weights (0..256) and states (ready, drain, maint).
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

COLORS = ("blue", "green")
STATES = ("ready", "drain", "maint")
MAX_WEIGHT = 256
# The query parameter the canary gate's synthetic requests carry: an LB log that keeps the request line tells
# them apart from real traffic (which is split by weight, while synthetic requests go equally to each color).
SYNTHETIC_MARKER = "switchyard-synthetic=1"
# The maintenance page (a recreate's outage): HTTP 503 with Retry-After, and this header, so a client (and the
# traffic module's live check) tells the page from any other 503 - an LB with no server, a failing color.
MAINTENANCE_STATUS = 503
MAINTENANCE_HEADER = "X-Switchyard-Maintenance"
MAX_RETRY_AFTER = 86400


class LBError(SwitchyardError):
    """The load balancer refused or failed an operation; details say what it showed."""


class LBUnreachable(LBError):
    """The load balancer's control endpoint did not answer (it is restarting, or down)."""


class LoadBalancer:
    """The interface. Every method names a route; colors are blue and green."""

    kind = None

    def exists(self):
        """Whether the LB has been set up on this host (its control endpoint is there)."""
        raise NotImplementedError

    def servers(self, route):
        """{color: {weight, state, up, status, sessions}} as the LB shows them now."""
        raise NotImplementedError

    def shift(self, route, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, guard=None):
        """Bring the route's colors to weights and states in an order that never leaves the route without
        an UP server with weight (lift, raise, lower, drain, maint), wait for a lifted color to be UP and a
        drained one to lose its sessions (up to drain_timeout), persist so a restart of the LB keeps it,
        and read it back. Returns {changed, before, after, shares, ...}; check mode changes nothing.
        guard, when given, is called before each change sent to the LB (the run's lease: it raises once
        the run lost its lock)."""
        raise NotImplementedError

    def check_route(self, route):
        """Refuse a route name the LB cannot take (before anything is sent)."""
        raise NotImplementedError

    def control_level(self):
        """The rights of the control endpoint a release changes the LB through (preflight's lb_admin):
        {"endpoint", "level" (as the LB names it), "admin": bool}. Raises LBUnreachable when nothing answers."""
        raise NotImplementedError

    def validate_config(self):
        """The configuration the LB runs with, checked by the LB's own validator where the LB runs
        (preflight's lb_config): {"file", "valid": bool, "output"}. Raises LBError when it cannot be
        checked (no container given, the container not running)."""
        raise NotImplementedError

    def config_files(self, routes):
        """{name: host path} of the LB's own files that make what it runs (kept in each release report's archive,
        under lb/): the kind's configuration and, where it has them, the files that hold the routes' weights."""
        return {}

    def check_routes(self, routes):
        """check_route() on each: the modules call it first, before any lock, ledger or LB is touched."""
        for route in routes:
            self.check_route(route)

    def shift_routes(
        self, routes, weights, states, up_timeout=30, drain_timeout=0, check_mode=False, best_effort=False, guard=None
    ):
        """shift() on every route. Every name is checked first; then every route is read and planned (its
        refusals raised) before the first command is sent - or, best_effort (the emergency paths:
        restore, rollback), each route is moved as far as it goes and the failures are raised together
        at the end. A failure carries the routes done so far in its details."""
        self.check_routes(routes)
        if check_mode:
            return [self.shift(route, weights, states, up_timeout, drain_timeout, check_mode=True) for route in routes]
        planned = {}
        if not best_effort:
            for route in routes:
                planned[route] = self.shift(route, weights, states, up_timeout, drain_timeout, check_mode=True)
        done, failures = [], []
        for route in routes:
            try:
                moved = self.shift(route, weights, states, up_timeout, drain_timeout, guard=guard)
                # A wait the plan made before trusting the LB's health (Traefik's settled_s) was this call's too.
                waited = planned.get(route, {}).get("settled_s")
                if waited:
                    moved["settled_s"] = round(waited + moved.get("settled_s", 0), 3)
                done.append(moved)
            except SwitchyardError as exc:
                failed = {"route": route, "changed": False, "failed": True, "msg": exc.msg, **self.read_after(route)}
                if not best_effort or getattr(exc, "lost_lock", False):
                    exc.details["routes"] = done + [failed]
                    raise
                failures.append(f"route {route}: {exc.msg}")
                done.append(failed)
        if failures:
            raise LBError("; ".join(failures), routes=done)
        return done

    def read_after(self, route):
        """{"after": servers} of a route whose change failed, when it can still be read (what the LB shows
        is what the ledger records); {} otherwise."""
        try:
            return {"after": self.servers(route)}
        except SwitchyardError:
            return {}

    def set_canary(self, color, check_mode=False, guard=None):
        """Make the canary header (`X-Canary: 1`) reach color on every route, so that a restart of the LB keeps
        it; read back. Returns {changed, before, after, ...}; check mode changes nothing."""
        raise NotImplementedError

    def maintenance(self, route):
        """Whether the LB answers the maintenance page on route now (what it runs, read back - not what a file says
        it should run)."""
        raise NotImplementedError

    def set_maintenance(self, route, enabled, check_mode=False, guard=None):
        """Turn the maintenance page of route on (every request of the route - the header canary's too - answers
        503 with Retry-After and the page the lb role deployed) or off (the colors' weights and states answer
        again), so a restart of the LB keeps it; read back. Returns {route, changed, before, after, commands};
        check mode changes nothing."""
        raise NotImplementedError

    def set_maintenance_routes(self, routes, enabled, check_mode=False, guard=None):
        """set_maintenance() on every route (every name checked first); a failure carries the routes done so far."""
        self.check_routes(routes)
        done = []
        for route in routes:
            try:
                done.append(self.set_maintenance(route, enabled, check_mode=check_mode, guard=guard))
            except SwitchyardError as exc:
                exc.details["maintenance_routes"] = done + [{"route": route, "changed": False, "failed": True}]
                raise
        return done

    def counters(self, route, colors):
        """A snapshot of the per-color request and error counters (for the canary gate's deltas)."""
        raise NotImplementedError

    def request_samples(self, route, since, until):
        """{color: samples} of the requests logged between since and until (statuses and latencies)."""
        raise NotImplementedError

    def request_log(self, routes, since, until, max_records=None):
        """[(epoch seconds, route, color, status, latency ms or None)] of every request logged on routes between
        since and until, in time order (the release report's time series; status -1: no answer). Read as a
        stream: at most max_records are kept (the latest), and self.request_log_dropped counts the others."""
        raise NotImplementedError

    def log_dropped(self):
        """How many log lines the LB has dropped since it started, or None when it does not say. HAProxy writes its
        log to stdout without blocking and counts the lines it could not write (DroppedLogs): a request missing
        from the log read is explained by a rise of this count."""
        return None

    def request_records(self, routes, since, until):
        """[(epoch seconds, route, color or None, status, request target or None)] of every request logged on
        routes between since and until, in time order: real and synthetic alike (the target - path and query -
        tells them apart, and names a probe), and where the kind logs them, the requests the LB answered
        itself without a color (color None: no server could take them). What a drill reads to know which
        color served each of its probes and how many requests failed; small windows only (kept whole)."""
        raise NotImplementedError


def shares(servers):
    """Percent of new traffic per server: weight over the total of ready, UP servers."""
    active = {n: s["weight"] for n, s in servers.items() if s["state"] == "ready" and s["up"]}
    total = sum(active.values())
    return {n: round(100.0 * active.get(n, 0) / total, 2) if total else 0.0 for n in sorted(servers)}


def observed_weights(routes):
    """{color: weight} the LB shows after a change: every route is set alike, so this is the routes'
    weight - and where routes differ (a change that failed on one route), each color's highest weight
    on any route, so the ledger never hides traffic a color still carries somewhere."""
    weights = {}
    for route in routes:
        for color, view in (route.get("after") or {}).items():
            weights[color] = max(weights.get(color, 0), int(view["weight"]))
    return dict(sorted(weights.items()))


def busy(servers, color):
    """Why color is not idle - weight or sessions on a route - or None. servers: {route: {color: view}}."""
    for route, by_color in sorted(servers.items()):
        view = by_color.get(color)
        if view and (int(view.get("weight") or 0) > 0 or int(view.get("sessions") or 0) > 0):
            return (
                f"route {route}, color {color} has weight {view.get('weight')} and {view.get('sessions')} current "
                "sessions; it must be at weight 0 and drained"
            )
    return None
