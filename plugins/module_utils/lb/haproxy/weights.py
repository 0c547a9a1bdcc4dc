# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shifting traffic between the servers of one HAProxy backend, safely and idempotently.

Reads first (`show servers state`, `show stat`), compares user weights and admin states only,
and does nothing when they match. Changes go through the Runtime API in an order that never
leaves the backend without capacity: lift maint/drain first (and wait for UP), raise weights,
lower weights, then drain or maint. Each change is persisted to the configuration (validated,
renamed into place) and to the server-state file, so a reload keeps it. When the socket is
unreachable, `reload: fallback` writes the validated configuration and reloads instead.
"""

from __future__ import annotations

import os
import time

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import MAX_WEIGHT, shares
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.config import (
    ConfigError,
    servers_in_config,
    set_servers,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.names import (
    check_name,
    check_names,
    check_prefix,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.parsers import (
    ADMIN_CMAINT,
    ADMIN_RMAINT,
    OP_RUNNING,
    parse_servers_state,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import (
    RuntimeAPI,
    RuntimeAPIError,
    RuntimeAPIUnreachable,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.state_file import set_server_states
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease

# Algorithms that apply runtime weights at once; static-rr and plain hashing ignore them.
DYNAMIC_ALGORITHMS = {"roundrobin", "leastconn", "first", "random"}


class WeightError(SwitchyardError):
    """A refusal or failure of a weight change; details go into the module result."""


def validate_static(params):
    # Names go into Runtime API commands and the configuration: HAProxy's own names only.
    check_name("backend", params["backend"])
    check_names("weights", params["weights"])
    check_names("states", params["states"])
    check_prefix("verify_prefix", params.get("verify_prefix") or "")
    for server, weight in (params["weights"] or {}).items():
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= MAX_WEIGHT:
            raise WeightError(f"weights.{server}={weight!r}: a weight is an integer from 0 to {MAX_WEIGHT}")
    for server, state in (params["states"] or {}).items():
        if state not in ("ready", "drain", "maint"):
            raise WeightError(f"states.{server}={state!r}: allowed values are ready, drain, maint")
    if params["reload"] != "never" and not params["reload_command"]:
        raise WeightError(
            f"reload={params['reload']} needs reload_command (the command that reloads the HAProxy master)"
        )
    if params["reload"] == "fallback":
        if not (params["persist"] or {}).get("config"):
            raise WeightError("reload=fallback needs persist.config: the reload reads the weights from the file")
    if params["drain_timeout"] < 0 or params["timeout"] <= 0 or params["up_timeout"] < 0:
        raise WeightError("drain_timeout and up_timeout must be >= 0 and timeout > 0 (seconds)")


def state_essentials(text):
    """Weights and admin states of a server-state dump; None when it is missing or unreadable."""
    try:
        parsed = parse_servers_state(text or "")
    except (ValueError, KeyError):
        return None
    return {
        (backend, name): (server["weight"], server["admin_state"] & ~ADMIN_RMAINT)
        for backend, servers in parsed.items()
        for name, server in servers.items()
    }


def server_view(state, stat):
    """What the result shows of one server."""
    return {
        "weight": state["weight"],
        "state": state["state"],
        "config_maint": bool(state["admin_state"] & ADMIN_CMAINT),
        "status": stat.get("status") if stat else None,
        "up": state["op_state"] == OP_RUNNING,
        "sessions": stat.get("scur", 0) if stat else None,
    }


class WeightChange:
    """One backend's servers brought to the weights and states asked (params: haproxy_weight's options)."""

    def __init__(self, params, runner, check_mode=False, guard=None):
        self.params = params
        self.runner = runner
        self.check_mode = check_mode
        # Called before each change sent to HAProxy or written for it: the run's lease, which raises
        # once the run lost its release lock (a wait for UP or for a drain can be long).
        self.guard = guard or (lambda: None)
        self.api = RuntimeAPI(self.params["socket"], timeout=self.params["timeout"])
        self.result = {
            "changed": False,
            "backend": self.params["backend"],
            "method": "runtime",
            "persisted": False,
            "commands": [],
        }

    # -- reading -------------------------------------------------------------------------------
    def read(self, api=None):
        api = api or self.api
        backend = self.params["backend"]
        states = api.servers_state()
        if backend not in states:
            known = ", ".join(sorted(states)) or "none"
            raise WeightError(f"backend={backend!r} is not a backend of this HAProxy; it has: {known}")
        stats = api.stat(backend)
        self.algorithm = api.backend_algorithm(backend)
        return {name: server_view(s, stats.get((backend, name))) for name, s in sorted(states[backend].items())}

    def check_socket(self):
        level = self.api.cli_level()
        if level != "admin":
            raise WeightError(
                f"socket={self.params['socket']} has level {level!r}: "
                "changing weights needs 'level admin' on the stats socket"
            )
        self.result["haproxy_version"] = self.api.info().get("Version")

    # -- entry point ---------------------------------------------------------------------------
    def run(self):
        validate_static(self.params)
        try:
            self.check_socket()
            before = self.read()
        except RuntimeAPIUnreachable as exc:
            if self.params["reload"] != "fallback":
                raise WeightError(f"{exc}; set reload=fallback to write the configuration and reload instead") from exc
            return self.run_fallback(str(exc))
        self.result["before"] = before
        self.result["snapshot"] = self.snapshot(before)
        target = self.target(before)
        plan = self.plan(before, target)
        if self.commands(plan):
            self.refuse_unsafe(before, target)
        config_before, config_after = self.planned_config(target)
        self.result["diff"] = self.diff(before, target, config_before, config_after)
        runtime_changes = bool(self.commands(plan))
        config_changes = config_before != config_after
        if self.check_mode:
            self.result["changed"] = runtime_changes or config_changes
            self.result["commands"] = self.commands(plan)
            self.result["after"] = {n: {**s, **target[n]} for n, s in before.items()}
            self.result["shares"] = shares(self.result["after"])
            return self.result
        started = time.monotonic()
        self.apply(plan)
        after = self.read()
        timings = {"runtime_ms": round((time.monotonic() - started) * 1000, 1)}
        self.result["changed"] = runtime_changes  # even if persisting fails below, traffic moved
        self.result["timings"] = timings
        self.result["after"] = after
        self.result["shares"] = shares(after)
        mismatched = {
            n: after[n]
            for n in target
            if (after[n]["weight"], after[n]["state"]) != (target[n]["weight"], target[n]["state"])
        }
        if mismatched:
            raise WeightError(f"HAProxy reports other weights or states than asked: {mismatched}")
        if self.params["persist"]:
            started = time.monotonic()
            try:
                self.persist(config_before, config_after)
            except OSError as exc:
                shown = {n: (s["weight"], s["state"]) for n, s in after.items()}
                raise WeightError(
                    f"HAProxy shows the change ({shown}), but persisting it to {exc.filename or 'the files'} failed: "
                    f"{exc.strerror or exc}. A reload or restart of HAProxy would bring back the previous weights "
                    "until it is persisted: free the space or fix the permissions, then run again (it persists what "
                    "HAProxy shows)"
                ) from exc
            timings["persist_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.result["changed"] = runtime_changes or self.result["persisted"]
        if self.params["reload"] == "always":
            self.reload_and_verify(target)
        return self.result

    def reload_and_verify(self, target):
        """Reload the master (a new configuration) and verify: a new worker answers the socket with
        the weights asked for."""
        self.guard()
        old_pid = self.api.info().get("Pid")
        # The new worker loads the server-state file: write what runs now, or it restores older state.
        state_file = (self.params["persist"] or {}).get("state_file")
        if state_file:
            write_atomically(state_file, self.api.query("show servers state"), like=state_file)
        self.runner.run(self.params["reload_command"], "reloading HAProxy")
        deadline = time.monotonic() + max(self.params["timeout"], 10)
        while True:
            try:
                pid = self.api.info().get("Pid")
            except RuntimeAPIError:
                pid = None
            if pid and pid != old_pid:
                break
            if time.monotonic() >= deadline:
                raise WeightError(f"HAProxy did not start a new worker after the reload (worker pid still {old_pid})")
            time.sleep(0.2)
        self.result["method"] = "reload"
        self.result["changed"] = True
        self.result["after"] = self.verify_after_reload(target)
        self.result["shares"] = shares(self.result["after"])

    # -- planning ------------------------------------------------------------------------------
    def target(self, before):
        names = set(self.params["weights"] or {}) | set(self.params["states"] or {})
        unknown = sorted(names - set(before))
        if unknown:
            raise WeightError(
                f"weights/states: unknown server(s) {', '.join(unknown)} in backend {self.params['backend']}; "
                f"it has: {', '.join(sorted(before))}"
            )
        target = {}
        for name, server in before.items():
            state = (self.params["states"] or {}).get(name, server["state"])
            if state == "drain" and self.params["maint_after_drain"]:
                state = "maint"
            target[name] = {"weight": (self.params["weights"] or {}).get(name, server["weight"]), "state": state}
        return target

    def refuse_unsafe(self, before, target):
        changes_weights = any(target[n]["weight"] != before[n]["weight"] for n in target)
        if changes_weights and self.algorithm and self.algorithm not in DYNAMIC_ALGORITHMS:
            raise WeightError(
                f"backend {self.params['backend']} balances with {self.algorithm!r}, which ignores runtime weights; "
                f"use one of {', '.join(sorted(DYNAMIC_ALGORITHMS))}"
            )
        disabled = sorted(n for n, t in target.items() if t["state"] == "ready" and before[n]["config_maint"])
        if disabled:
            raise WeightError(
                f"states: server(s) {', '.join(disabled)} are 'disabled' in the configuration, which the Runtime "
                "API cannot lift; remove 'disabled' from their server lines and reload"
            )
        if self.params["require_up"]:
            for name, want in sorted(target.items()):
                gains = (
                    want["weight"] > 0
                    and want["state"] == "ready"
                    and (want["weight"] > before[name]["weight"] or before[name]["state"] != "ready")
                )
                lifted = before[name]["state"] != "ready"  # checked after it is lifted (checks restart)
                if gains and not lifted and not before[name]["up"]:
                    raise WeightError(
                        f"weights.{name}: server {name} is {before[name]['status'] or 'not UP'}; refusing to send it "
                        "traffic (require_up=true)"
                    )
        effective = sum(
            t["weight"]
            for n, t in target.items()
            if t["state"] == "ready" and (before[n]["up"] or before[n]["state"] != "ready")
        )
        if effective == 0:
            raise WeightError(
                f"backend {self.params['backend']} would have zero total weight on its UP servers: "
                f"{ {n: t['weight'] for n, t in target.items()} }; refusing to leave it without capacity"
            )

    def plan(self, before, target):
        """Runtime API commands by phase: lift, raise, lower, drain, maint."""
        backend = self.params["backend"]
        asked = self.params["states"] or {}
        plan = {"lift": [], "raise": [], "lower": [], "drain": [], "maint": [], "lifted": [], "drained": []}
        for name in sorted(target):
            was, want = before[name], target[name]
            if want["state"] == "ready" and was["state"] != "ready":
                plan["lift"].append(f"set server {backend}/{name} state ready")
                plan["lifted"].append(name)
            if want["weight"] > was["weight"]:
                plan["raise"].append(f"set weight {backend}/{name} {want['weight']}")
            elif want["weight"] < was["weight"]:
                plan["lower"].append(f"set weight {backend}/{name} {want['weight']}")
            if asked.get(name) == "drain" and was["state"] not in ("drain", "maint"):
                plan["drain"].append(f"set server {backend}/{name} state drain")
                plan["drained"].append(name)
            if want["state"] == "maint" and was["state"] != "maint":
                plan["maint"].append(f"set server {backend}/{name} state maint")
        return plan

    @staticmethod
    def commands(plan):
        return plan["lift"] + plan["raise"] + plan["lower"] + plan["drain"] + plan["maint"]

    # -- applying ------------------------------------------------------------------------------
    def execute(self, commands):
        if not commands:
            return
        self.guard()
        answers = self.api.execute(commands)
        self.result["commands"].extend(commands)
        failed = [(c, m) for c, m in answers if m]
        if failed:
            raise WeightError(f"HAProxy refused: {'; '.join(f'{c!r}: {m}' for c, m in failed)}")

    def apply(self, plan):
        self.execute(plan["lift"])
        if plan["lifted"]:
            self.wait_up(plan["lifted"])
        # Raise, check that HAProxy took it, then lower: the backend never loses capacity on the way
        # (HAProxy goes on with the next command of a line after refusing one).
        self.execute(plan["raise"])
        self.execute(plan["lower"])
        self.execute(plan["drain"])
        if plan["drained"] and self.params["drain_timeout"] > 0:
            self.result["drain"] = self.wait_drained(plan["drained"])
        self.execute(plan["maint"])

    def wait_up(self, names):
        deadline = time.monotonic() + self.params["up_timeout"]
        while True:
            now = self.read()
            down = [n for n in names if not now[n]["up"]]
            if not down or not self.params["require_up"]:
                return
            if time.monotonic() >= deadline:
                raise WeightError(
                    f"server(s) {', '.join(down)} did not come UP within up_timeout={self.params['up_timeout']} s "
                    f"after leaving maint/drain ({', '.join(str(now[n]['status']) for n in down)}); "
                    "no weight was changed",
                    after=now,
                )
            time.sleep(0.25)

    def wait_drained(self, names):
        deadline = time.monotonic() + self.params["drain_timeout"]
        started = time.monotonic()
        while True:
            now = self.read()
            busy = {n: now[n]["sessions"] for n in names if now[n]["sessions"]}
            if not busy or time.monotonic() >= deadline:
                return {"waited": round(time.monotonic() - started, 3), "sessions_left": busy}
            time.sleep(0.25)

    # -- persisting ----------------------------------------------------------------------------
    def planned_config(self, target):
        path = (self.params["persist"] or {}).get("config")
        if not path:
            return None, None
        text = read_text(path)
        if text is None:
            raise WeightError(f"persist.config={path} does not exist")
        backend = self.params["backend"]
        in_file = servers_in_config(text).get(backend)
        if in_file is None:
            raise WeightError(f"persist.config={path} has no backend {backend}")
        changes = {}
        for name, want in target.items():
            if name not in in_file:
                raise WeightError(f"persist.config={path}: backend {backend} has no server line for {name}")
            # Only weights go into the file: a `disabled` server (config maint) cannot be made ready
            # through the Runtime API, so admin states are kept in the server-state file instead.
            if in_file[name]["weight"] != want["weight"]:
                changes[name] = {"weight": want["weight"], "disabled": None}
        try:
            return text, set_servers(text, backend, changes) if changes else text
        except ConfigError as exc:
            raise WeightError(f"persist.config={path}: {exc}") from exc

    def validate(self, path):
        command = self.params["validate_command"]
        if not command:
            return
        args = [a.replace("{path}", path).replace("{name}", os.path.basename(path)) for a in command]
        rc, out, err = self.runner.run(args, "validating the HAProxy configuration", check=False)
        if rc != 0:
            raise WeightError(
                f"the new configuration was not validated ({' '.join(args[:3])}... exited {rc}); the old one is "
                f"kept: {(err or out).strip()[-1500:]}",
                cmd=args,
                rc=rc,
                stdout=out,
                stderr=err,
            )

    def write_config(self, config_after):
        path = self.params["persist"]["config"]
        directory = os.path.dirname(os.path.abspath(path))
        candidate = os.path.join(directory, f".{os.path.basename(path)}.switchyard-new")
        write_atomically(candidate, config_after, like=path)
        try:
            self.validate(candidate)
            self.guard()
            # Rename within the mounted directory: the container sees the new file at once (a
            # single-file bind mount would keep showing the old inode).
            os.replace(candidate, path)
        finally:
            if os.path.exists(candidate):
                os.unlink(candidate)

    def persist(self, config_before, config_after):
        if config_after is not None and config_after != config_before:
            self.write_config(config_after)
            self.result["persisted"] = True
        state_file = (self.params["persist"] or {}).get("state_file")
        if state_file:
            dump = self.api.query("show servers state")
            # Check times and results move all the time: compare what a reload would restore.
            if state_essentials(read_text(state_file)) != state_essentials(dump):
                write_atomically(state_file, dump, like=state_file)
                self.result["persisted"] = True

    # -- fallback ------------------------------------------------------------------------------
    def read_live(self):
        """(servers, `show servers state` dump) through verify_socket (the master CLI relaying to a
        worker), or (None, None) when nothing answers there either."""
        if not self.params["verify_socket"]:
            return None, None
        api = RuntimeAPI(
            self.params["verify_socket"], timeout=self.params["timeout"], prefix=self.params["verify_prefix"] or ""
        )
        try:
            return self.read(api), api.query("show servers state")
        except RuntimeAPIError as exc:
            self.result["verify_socket_error"] = str(exc)
            return None, None

    def from_files(self, config_text, state_text):
        """What a reload would start with: weights from the configuration, admin states from the
        server-state file (a `disabled` server line is maint)."""
        in_file = servers_in_config(config_text).get(self.params["backend"])
        if in_file is None:
            raise WeightError(f"backend={self.params['backend']!r} is not in {self.params['persist']['config']}")
        try:
            saved = parse_servers_state(state_text).get(self.params["backend"], {}) if state_text else {}
        except ValueError:
            saved = {}
        before = {}
        for name, server in in_file.items():
            state = "maint" if server["disabled"] else (saved.get(name) or {}).get("state", "ready")
            before[name] = {"weight": server["weight"], "state": state, "status": None, "up": None, "sessions": None}
        return before

    def run_fallback(self, why):
        """The admin socket is unreachable: the weights into the configuration, the admin states into
        the server-state file, validate, reload, and verify both through whatever socket answers."""
        self.result["method"] = "reload"
        self.result["socket_error"] = why
        path = self.params["persist"]["config"]
        state_path = self.params["persist"].get("state_file")
        text = read_text(path)
        if text is None:
            raise WeightError(f"persist.config={path} does not exist")
        state_text = read_text(state_path) if state_path else None
        live, dump = self.read_live()
        before = live if live is not None else self.from_files(text, state_text)
        self.result["before"] = before
        self.result["snapshot"] = self.snapshot(before)
        target = self.target(before)
        if live is not None:
            self.refuse_unsafe(before, target)
        elif sum(t["weight"] for t in target.values() if t["state"] == "ready") == 0:
            raise WeightError(
                f"backend {self.params['backend']} would have zero total weight: "
                f"{ {n: t['weight'] for n, t in target.items()} }; refusing to leave it without capacity"
            )
        _unused, config_after = self.planned_config(target)
        state_after = self.planned_state_file(dump or state_text, target)
        self.result["diff"] = self.diff(before, target, text, config_after)
        runtime_ok = all(
            (before[n]["weight"], before[n]["state"]) == (want["weight"], want["state"]) for n, want in target.items()
        )
        files_ok = config_after == text and (
            state_after is None or state_essentials(state_after) == state_essentials(state_text)
        )
        if runtime_ok and files_ok:
            if live is None:
                # The files say so, but nothing running could be asked: never report that as what HAProxy shows.
                held = {n: t["weight"] for n, t in target.items()}
                raise WeightError(
                    f"no socket answers ({why}; verify_socket: {self.result.get('verify_socket_error', 'none')}): "
                    f"the configuration and the server-state file already hold {held}, but what HAProxy runs "
                    "cannot be read - is the LB container running?"
                )
            self.result["after"] = before
            return self.result
        self.result["changed"] = True
        if self.check_mode:
            self.result["after"] = {n: {**s, **target[n]} for n, s in before.items()}
            return self.result
        if config_after != text:
            self.write_config(config_after)
        if state_after is not None:
            self.guard()
            write_atomically(state_path, state_after, mode=0o644, like=state_path)
        self.result["persisted"] = True
        if runtime_ok:  # the running HAProxy already shows it: only the files were behind
            self.result["method"] = "persist"
            self.result["after"] = before
            return self.result
        self.guard()
        self.runner.run(self.params["reload_command"], "reloading HAProxy")
        self.result["after"] = self.verify_after_reload(target)
        self.result["shares"] = shares(self.result["after"])
        return self.result

    def planned_state_file(self, base, target):
        """The server-state file with target's weights and admin states; None when there is no file to
        write. Without a dump to start from, only a target of ready servers can go through a reload."""
        state_path = (self.params["persist"] or {}).get("state_file")
        if not state_path:
            if any(t["state"] != "ready" for t in target.values()):
                raise WeightError(
                    "reload=fallback needs persist.state_file to set drain or maint: "
                    "the configuration holds only weights"
                )
            return None
        if not base:
            if any(t["state"] != "ready" for t in target.values()):
                raise WeightError(
                    f"the server-state file {state_path} is missing and no socket answers: the states "
                    f"{ {n: t['state'] for n, t in target.items()} } cannot be carried through a reload"
                )
            return None
        try:
            return set_server_states(base, self.params["backend"], target)
        except ValueError as exc:
            raise WeightError(f"persist.state_file={state_path}: {exc}") from exc

    def verify_after_reload(self, target):
        sockets = [(self.params["socket"], "")]
        if self.params["verify_socket"]:
            sockets.insert(0, (self.params["verify_socket"], self.params["verify_prefix"] or ""))
        deadline = time.monotonic() + max(self.params["timeout"], 10)
        seen = {}
        while time.monotonic() < deadline:
            for address, prefix in sockets:
                try:
                    now = self.read(RuntimeAPI(address, timeout=self.params["timeout"], prefix=prefix))
                except (RuntimeAPIError, WeightError) as exc:
                    seen[address] = str(exc)
                    continue
                if all((now[n]["weight"], now[n]["state"]) == (t["weight"], t["state"]) for n, t in target.items()):
                    self.result["verified_through"] = address
                    return now
                seen[address] = f"reports {now}"
            time.sleep(0.25)
        raise WeightError(
            "reloaded HAProxy with the new configuration, but could not verify the weights: "
            + "; ".join(f"{a}: {m}" for a, m in seen.items())
        )

    # -- reporting -----------------------------------------------------------------------------
    def snapshot(self, before):
        return {
            "socket": self.params["socket"],
            "backend": self.params["backend"],
            "weights": {n: s["weight"] for n, s in before.items()},
            "states": {n: s["state"] for n, s in before.items()},
        }

    @staticmethod
    def diff(before, target, config_before, config_after):
        def text(servers):
            return "".join(f"{n}: weight {s['weight']}, {s['state']}\n" for n, s in sorted(servers.items()))

        diffs = [{"before_header": "servers", "after_header": "servers", "before": text(before), "after": text(target)}]
        if config_before is not None:
            diffs.append(
                {"before_header": "config", "after_header": "config", "before": config_before, "after": config_after}
            )
        return diffs


class HAProxyWeightManager(WeightChange):
    """The haproxy_weight module: one WeightChange with the module's parameters, under the run's lease."""

    def __init__(self, module):
        self.lease = Lease(module.params.get("lease"), module.check_mode, warn=module.warn)
        super().__init__(module.params, CommandRunner(module), module.check_mode, guard=self.lease.guard())

    def run(self):
        validate_static(self.params)
        with self.lease.kept():
            return super().run()
