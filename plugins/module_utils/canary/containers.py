# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's own view of the baseline's and the canary's containers over one window (the gate's
`containers` source).

A snapshot at the window's start and one at its end: the containers of each role (by Compose project
label), their state, health and restart count (`docker inspect`, through the CLI), their cumulative CPU
time and memory (the Engine's one-shot stats, through the Docker SDK: `docker stats --no-stream` waits
for two samples, about 2 s), then the lines their logs got during the window (streamed, never held
whole). Judged: the candidate's health and restarts regardless of traffic (a restart, or an unhealthy
or stopped container, is a rollback reason); its CPU per request, memory and error log lines per
request against the baseline's, with tolerances, and only with requests on both sides - too little
data is inconclusive, never a pass.
"""

from __future__ import annotations

import json
import os
import re
import time
import traceback

from ansible_collections.switchyard.release.plugins.module_utils.canary import judge
from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError, CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.compose.parsers import (
    PROJECT_LABEL,
    summarize_container,
)

try:
    import docker
    from docker.context import ContextAPI
    from docker.errors import DockerException, NotFound

    HAS_DOCKER_SDK = True
    DOCKER_SDK_IMPORT_ERROR = None
except ImportError:  # the gate reports it with missing_required_lib
    HAS_DOCKER_SDK = False
    DOCKER_SDK_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):
        pass

    class NotFound(DockerException):
        pass


SOURCE = "containers"
ROLES = ("baseline", "canary")
MIB = 1024 * 1024
DEFAULT_LOG_PATTERNS = [r"Traceback \(most recent call last\)", r"\bERROR\b", r"\bFATAL\b", r"\bpanic\b"]
# The defaults of the source's options (canary_gate's argument_spec fills them; validate() checks them).
DEFAULTS = {
    "docker_cli": "docker",
    "docker_host": None,
    "timeout": 10,
    "log_patterns": DEFAULT_LOG_PATTERNS,
    "max_restarts": 0,
    "max_cpu_ratio": 2.0,
    "cpu_tolerance_ms": 2.0,
    "max_memory_ratio": 1.5,
    "memory_tolerance_mib": 64,
    "max_log_error_ratio": 2.0,
    "log_error_tolerance": 0.01,
    "max_log_errors": None,
}
MAX_LINE = 64 * 1024  # a longer log line is cut: memory stays bounded whatever a container prints
MAX_EXAMPLES = 3
EXAMPLE_LENGTH = 200
# In an example log line: URL userinfo and NAME=value / NAME: value of credential-like names are masked.
SECRET_PATTERNS = (
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1****@"),
    (
        re.compile(
            r"(?i)\b([\w.-]*(?:password|passwd|secret|token|api[_-]?key|authorization|cookie|credential)[\w.-]*"
            r"[\"']?\s*[=:]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;&]+"
        ),
        r"\1****",
    ),
)


class ContainerSourceError(SwitchyardError):
    """The containers source is misconfigured, or Docker cannot be asked."""


# Warnings already given by this process (the gate builds a watch per window; a module run is a process).
_WARNED = set()


def status_code(exc):
    """The HTTP status of a Docker API error, or None."""
    return getattr(getattr(exc, "response", None), "status_code", None)


def logs_unreadable(exc):
    """Why Docker cannot give back a container's logs (logging driver `none`, a remote driver with the
    dual logging cache off: the Engine answers 501), or None for another error."""
    text = str(exc)
    if status_code(exc) == 501 or "does not support reading" in text:
        return getattr(exc, "explanation", None) or text
    return None


def options(source):
    """The source with every option present (defaults for those argument_spec did not fill)."""
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in (source or {}).items() if v is not None})
    return merged


def validate(source):
    """Checks argument_spec cannot make, before anything is asked of Docker; raises ContainerSourceError
    naming the parameter and what it accepts."""
    opts = options(source)
    projects = opts.get("projects") or {}
    for role in ROLES:
        if not isinstance(projects.get(role), str) or not projects[role].strip():
            raise ContainerSourceError(
                f"sources.containers.projects.{role}: give the Compose project of the {role} (for example shop-blue)"
            )
    if projects["baseline"] == projects["canary"]:
        raise ContainerSourceError(
            f"sources.containers.projects: baseline and canary are both {projects['baseline']!r}; "
            "give the two colors' projects"
        )
    patterns = opts["log_patterns"]
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ContainerSourceError("sources.containers.log_patterns: a list of regular expressions (not empty strings)")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ContainerSourceError(
                f"sources.containers.log_patterns: {pattern!r} is not a regular expression ({exc})"
            ) from None
    for name in ("max_cpu_ratio", "max_memory_ratio", "max_log_error_ratio"):
        if not opts[name] >= 1:
            raise ContainerSourceError(f"sources.containers.{name}={opts[name]}: a ratio of 1 or more, e.g. 2.0")
    for name in ("cpu_tolerance_ms", "memory_tolerance_mib", "log_error_tolerance", "max_restarts", "timeout"):
        if not opts[name] >= 0:
            raise ContainerSourceError(f"sources.containers.{name}={opts[name]}: 0 or more")
    if opts["max_log_errors"] is not None and opts["max_log_errors"] < 0:
        raise ContainerSourceError(f"sources.containers.max_log_errors={opts['max_log_errors']}: 0 or more, or unset")
    if opts["timeout"] == 0:
        raise ContainerSourceError("sources.containers.timeout=0: seconds to wait for Docker, more than 0")
    return opts


# -- parsers (recorded real output in the unit tests) --------------------------------------------------
def parse_ps(text):
    """`docker ps --format '{{.ID}}\t{{.Label "com.docker.compose.project"}}'` -> [(id, project)]."""
    rows = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        cid, sep, project = line.partition("\t")
        if not sep or not re.fullmatch(r"[0-9a-f]{12,64}", cid):
            raise ValueError(f"unexpected line in 'docker ps' output: {line[:200]!r}")
        rows.append((cid, project.strip()))
    return rows


def parse_inspect(text):
    """`docker inspect` of containers -> {full id: state} with the project, name, state, health and
    restart count (and when the container started: a restart changes it)."""
    data = json.loads(text or "[]")
    if not isinstance(data, list) or not all(isinstance(c, dict) and "Id" in c for c in data):
        raise ValueError("expected a JSON list of containers")
    out = {}
    for inspected in data:
        facts = summarize_container(inspected)
        out[inspected["Id"]] = {
            "name": facts["name"],
            "project": ((inspected.get("Config") or {}).get("Labels") or {}).get(PROJECT_LABEL),
            "state": facts["state"],
            "health": facts["health"],
            "restarts": int(facts["restart_count"] or 0),
            "started_at": (inspected.get("State") or {}).get("StartedAt"),
            "exit_code": facts["exit_code"],
            "oneoff": facts["oneoff"],
            "restart_policy": (((inspected.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"),
        }
    return out


def completed(state):
    """A job that ran to completion (an init or migration container: exited 0, never restarted by Docker):
    part of the project, not of what serves."""
    return state["state"] == "exited" and state["exit_code"] == 0 and state["restart_policy"] == "no"


def cpu_ns(stats):
    """Cumulative CPU time (ns) of a container's one-shot stats; None when it has none (not running)."""
    usage = ((stats or {}).get("cpu_stats") or {}).get("cpu_usage") or {}
    total = usage.get("total_usage")
    return int(total) if total else None


def memory_bytes(stats):
    """Memory in use as `docker stats` shows it: usage minus the inactive page cache (cgroup v2
    inactive_file, v1 total_inactive_file); None when the stats carry none."""
    memory = (stats or {}).get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    details = memory.get("stats") or {}
    for key in ("inactive_file", "total_inactive_file"):  # cgroup v2, then v1 (as the docker CLI)
        if key in details and details[key] < usage:
            return int(usage - details[key])
    return int(usage)


def redact(line):
    """An example log line fit for the verdict: credentials masked, cut to EXAMPLE_LENGTH characters."""
    for pattern, replacement in SECRET_PATTERNS:
        line = pattern.sub(replacement, line)
    return line if len(line) <= EXAMPLE_LENGTH else line[: EXAMPLE_LENGTH - 3] + "..."


class LogCounter:
    """Counts log lines and the error lines among them, one stream at a time, in bounded memory.

    A Python traceback is one error, not one per line: after a line matching a pattern that starts a
    traceback, its indented frames, the exception line that ends it and the chaining sentences between
    tracebacks are part of the same error."""

    CHAINING = (
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    )

    def __init__(self, patterns):
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))
        self.lines = 0
        self.errors = 0
        self.examples = []
        self._traceback = (
            None  # None; "frames" inside one; "after" its exception line; "chained" after a chaining sentence
        )

    def feed_line(self, line):
        self.lines += 1
        stripped = line.strip()
        if self._traceback == "frames":
            if line[:1] in (" ", "\t") or not stripped:
                return
            if not line.startswith("Traceback"):  # another thread's traceback, interleaved: its own error
                self._traceback = "after"  # the exception line that ends the traceback
                return
        if self._traceback in ("after", "chained"):
            if not stripped:
                return
            if stripped in self.CHAINING:
                self._traceback = "chained"
                return
            if self._traceback == "chained" and line.startswith("Traceback"):
                self._traceback = "frames"  # the next exception of the same chain: the same error
                return
            self._traceback = None
        if self.pattern.search(line):
            self.errors += 1
            if line.startswith("Traceback"):
                self._traceback = "frames"
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(redact(line.rstrip()))

    def feed_stream(self, chunks):
        """Feed a stream of bytes chunks (split anywhere) line by line; a line is cut at MAX_LINE bytes (the
        rest of it is skipped), so memory stays bounded."""
        pending, skipping = b"", False
        for chunk in chunks:
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                if skipping:
                    skipping = False  # the end of a line already cut
                    continue
                self.feed_line(raw[:MAX_LINE].decode("utf-8", "replace"))
            if skipping:
                pending = b""
            elif len(pending) > MAX_LINE:
                self.feed_line(pending[:MAX_LINE].decode("utf-8", "replace"))
                pending, skipping = b"", True
        if pending and not skipping:
            self.feed_line(pending.decode("utf-8", "replace"))
        self._traceback = None


# -- judging --------------------------------------------------------------------------------------------
def metric(name, status, reason, **values):
    return judge.metric(name, status, reason, source=SOURCE, **values)


def judge_health(canary, baseline):
    """The candidate's containers at the window's end: none, stopped or unhealthy fail; still starting is
    inconclusive."""
    # canary/baseline: the healthy containers, out of canary_n/baseline_n.
    values = {
        "canary": canary["healthy"],
        "canary_n": canary["containers"],
        "baseline": baseline["healthy"],
        "baseline_n": baseline["containers"],
        "unhealthy": canary["unhealthy"],
        "starting": canary["starting"],
    }
    if not canary["containers"]:
        return metric("container_health", judge.FAIL, "the canary's project has no container: nothing runs", **values)
    if canary["unhealthy"]:
        return metric(
            "container_health",
            judge.FAIL,
            f"{canary['unhealthy']} of the canary's {canary['containers']} container(s) unhealthy or not running: "
            + ", ".join(canary["not_healthy"]),
            **values,
        )
    if canary["starting"]:
        return metric(
            "container_health",
            judge.INCONCLUSIVE,
            f"{canary['starting']} of the canary's {canary['containers']} container(s) still starting (health "
            "not known yet)",
            **values,
        )
    return metric(
        "container_health", judge.PASS, f"all {canary['containers']} canary container(s) running and healthy", **values
    )


def judge_restarts(canary, baseline, max_restarts):
    failed = canary["restarts"] > max_restarts
    return metric(
        "restarts",
        judge.FAIL if failed else judge.PASS,
        f"the canary's containers restarted {canary['restarts']} time(s) during the window "
        f"({'more than' if failed else 'within'} max_restarts={max_restarts}; baseline {baseline['restarts']})"
        + (f": {', '.join(canary['restarted'])}" if canary["restarted"] else ""),
        canary=canary["restarts"],
        baseline=baseline["restarts"],
        limit=max_restarts,
    )


def too_little(name, canary, baseline, min_requests, limit, what):
    """The reason a per-request comparison cannot be made, or None."""
    if not canary["containers"]:
        return metric(
            name,
            judge.INCONCLUSIVE,
            f"{what} comparison skipped: the canary's project has no container",
            canary_n=canary["requests"],
            baseline_n=baseline["requests"],
            limit=limit,
        )
    if not baseline["containers"]:
        return metric(
            name,
            judge.INCONCLUSIVE,
            f"{what} comparison skipped: the baseline's project has no container",
            canary_n=canary["requests"],
            baseline_n=baseline["requests"],
            limit=limit,
        )
    if canary["requests"] < min_requests or baseline["requests"] < min_requests:
        return metric(
            name,
            judge.INCONCLUSIVE,
            f"too little traffic to judge {what} per request: {canary['requests']} canary and "
            f"{baseline['requests']} baseline requests (min_requests {min_requests} each)",
            canary_n=canary["requests"],
            baseline_n=baseline["requests"],
            limit=limit,
        )
    return None


def judge_cpu(canary, baseline, opts, min_requests):
    name, limit = "cpu_per_request", opts["max_cpu_ratio"]
    skipped = too_little(name, canary, baseline, min_requests, limit, "CPU")
    if skipped:
        return skipped
    if canary["cpu_seconds"] is None or baseline["cpu_seconds"] is None:
        why = "no CPU figures from Docker's stats (no running container on one side)"
        return metric(name, judge.INCONCLUSIVE, why, limit=limit)
    c_ms = canary["cpu_seconds"] * 1000 / canary["requests"]
    b_ms = baseline["cpu_seconds"] * 1000 / baseline["requests"]
    ratio = c_ms / b_ms if b_ms else (float("inf") if c_ms else 1.0)
    tolerance = opts["cpu_tolerance_ms"]
    # A container's CPU includes what it spends whatever it serves (idle work, a sidecar): at a small share
    # it weighs on the canary's few requests (two identical apps at a 10 % step: the canary's CPU per
    # request is several times the baseline's). So the canary fails only when also its CPU beyond what its
    # containers would use at a baseline container's CPU - an upper bound of their idle CPU while a canary
    # container serves fewer requests than a baseline one - is, per canary request, more than (limit - 1)
    # times the baseline's CPU per request and the tolerance: requests that really cost more. An identical
    # app has none (a canary container serving fewer requests uses less than a baseline one).
    c_per_container = canary["cpu_seconds"] / max(1, canary["containers"])
    b_per_container = baseline["cpu_seconds"] / max(1, baseline["containers"])
    extra_ms = (canary["cpu_seconds"] - b_per_container * canary["containers"]) * 1000 / canary["requests"]
    failed = ratio > limit and c_ms - b_ms > tolerance and extra_ms > max((limit - 1) * b_ms, tolerance)
    return metric(
        name,
        judge.FAIL if failed else judge.PASS,
        f"canary {c_ms:.2f} ms of CPU per request vs baseline {b_ms:.2f} ms (x{ratio:.2f}), "
        f"{extra_ms:.2f} ms per request beyond a baseline container's CPU ({c_per_container:.3f} vs "
        f"{b_per_container:.3f} s per container); fails above x{limit:g} and {tolerance:g} ms more when also "
        f"beyond by more than x{limit - 1:g} the baseline's per request",
        canary=round(c_ms, 4),
        baseline=round(b_ms, 4),
        ratio=ratio if ratio != float("inf") else "inf",
        extra_ms=round(extra_ms, 4),
        canary_n=canary["requests"],
        baseline_n=baseline["requests"],
        limit=limit,
        tolerance_ms=tolerance,
        test="ratio with tolerance",
    )


def judge_memory(canary, baseline, opts):
    """Memory per container at the window's end (not per request: memory is held, not spent)."""
    name, limit = "memory", opts["max_memory_ratio"]
    for role, figures in (("canary", canary), ("baseline", baseline)):
        if not figures["containers"]:
            why = f"memory comparison skipped: the {role}'s project has no container"
            return metric(name, judge.INCONCLUSIVE, why, limit=limit)
    if not canary["memory_bytes"] or not baseline["memory_bytes"]:
        why = "no memory figures from Docker's stats (no running container on one side)"
        return metric(name, judge.INCONCLUSIVE, why, limit=limit)
    c_mib = canary["memory_bytes"] / canary["containers"] / MIB
    b_mib = baseline["memory_bytes"] / baseline["containers"] / MIB
    ratio = c_mib / b_mib
    tolerance = opts["memory_tolerance_mib"]
    failed = ratio > limit and c_mib - b_mib > tolerance
    return metric(
        name,
        judge.FAIL if failed else judge.PASS,
        f"canary {c_mib:.1f} MiB per container vs baseline {b_mib:.1f} MiB (x{ratio:.2f}; fails above x{limit:g} "
        f"and {tolerance:g} MiB more)",
        canary=round(c_mib, 2),
        baseline=round(b_mib, 2),
        ratio=ratio,
        limit=limit,
        tolerance_mib=tolerance,
        test="ratio with tolerance",
    )


def judge_log_errors(canary, baseline, opts, min_requests):
    name, limit = "log_errors", opts["max_log_error_ratio"]
    cap = opts["max_log_errors"]
    counts = {
        "canary": canary["log_errors"],
        "baseline": baseline["log_errors"],
        "canary_n": canary["requests"],
        "baseline_n": baseline["requests"],
        "examples": canary["log_error_examples"],
    }
    if cap is not None and canary["log_errors"] > cap:
        return metric(
            name,
            judge.FAIL,
            f"{canary['log_errors']} error line(s) in the canary's logs during the window, more than "
            f"max_log_errors={cap}",
            limit=cap,
            **counts,
        )
    skipped = too_little(name, canary, baseline, min_requests, limit, "log errors")
    if skipped:
        skipped.update(counts)
        return skipped
    c_rate = canary["log_errors"] / canary["requests"]
    b_rate = baseline["log_errors"] / baseline["requests"]
    tolerance = opts["log_error_tolerance"]
    # Lines a container logs whatever it serves (a periodic warning, a health check's complaint) weigh on
    # the side with fewer requests - the canary at a small share: the canary fails only when it also logs
    # more error lines per container than limit x the baseline's, so that noise cancels out.
    c_lines = canary["log_errors"] / max(1, canary.get("containers") or 1)
    b_lines = baseline["log_errors"] / max(1, baseline.get("containers") or 1)
    failed = c_rate > limit * b_rate + tolerance and c_lines > limit * b_lines
    return metric(
        name,
        judge.FAIL if failed else judge.PASS,
        f"canary {canary['log_errors']} error line(s) for {canary['requests']} requests ({c_rate:.3f} per request) "
        f"vs baseline {baseline['log_errors']} for {baseline['requests']} ({b_rate:.3f}); fails above "
        f"x{limit:g} the baseline's rate + {tolerance:g} when also above x{limit:g} its lines per container",
        rate=c_rate,
        baseline_rate=b_rate,
        limit=limit,
        tolerance=tolerance,
        test="rate ratio with tolerance",
        **counts,
    )


# -- observing ------------------------------------------------------------------------------------------
class ContainerWatch:
    """Docker's own view of the baseline's and the canary's containers over one window."""

    def __init__(self, source, runner, limits):
        self.opts = validate(source)
        self.projects = dict(self.opts["projects"])
        environ = dict(runner.environ)
        if self.opts["docker_host"]:
            environ["DOCKER_HOST"] = self.opts["docker_host"]
        self.runner = CommandRunner(runner.module, environ)
        self.min_requests = max(1, int((limits or {}).get("min_requests") or 1))
        self.cli = self.opts["docker_cli"]
        self._client = None
        self.started = None

    # -- Docker --------------------------------------------------------------------------------------
    def client(self):
        """The SDK's client, on the daemon the CLI talks to: docker_host, else DOCKER_HOST (and DOCKER_TLS_VERIFY,
        DOCKER_CERT_PATH) of the commands' environment, else the DOCKER_CONTEXT or current docker context."""
        if not HAS_DOCKER_SDK:
            from ansible.module_utils.basic import missing_required_lib

            raise ContainerSourceError(
                missing_required_lib(
                    "docker (the Docker SDK for Python)",
                    reason="by the canary gate's containers source (sources.containers); install it on the Docker "
                    "host, or turn the source off with switchyard_gate_containers: false",
                    url="https://pypi.org/project/docker/",
                ),
                exception=DOCKER_SDK_IMPORT_ERROR,
            )
        if self._client is None:
            environ = {**os.environ, **self.runner.environ}
            kwargs = {}
            try:
                kwargs = docker.utils.kwargs_from_env(environment=environ)
                if not kwargs.get("base_url"):
                    context = ContextAPI.get_context(environ.get("DOCKER_CONTEXT") or None)
                    if context is None:
                        raise DockerException(f"docker context {environ.get('DOCKER_CONTEXT')!r} not found")
                    kwargs = {"base_url": context.Host, "tls": context.TLSConfig or False}
                self._client = docker.APIClient(timeout=self.opts["timeout"], version="auto", **kwargs)
            except DockerException as exc:
                where = f" at {kwargs['base_url']}" if kwargs.get("base_url") else ""
                raise ContainerSourceError(f"sources.containers: cannot reach the Docker daemon{where}: {exc}") from exc
        return self._client

    def gone(self, cid, exc):
        """True when a 404 of stats or logs is of a container removed since `docker inspect` listed it."""
        if status_code(exc) != 404:
            return False
        try:
            self.client().inspect_container(cid)
        except NotFound:
            return True
        except DockerException:
            return False
        return False

    def warn(self, message):
        if message not in _WARNED and hasattr(self.runner.module, "warn"):
            _WARNED.add(message)
            self.runner.module.warn(message)

    def containers(self):
        """{role: {id: state}} of both projects (one `docker ps` and one `docker inspect`)."""
        args = [
            self.cli,
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            f"label={PROJECT_LABEL}",
            "--format",
            '{{.ID}}\t{{.Label "' + PROJECT_LABEL + '"}}',
        ]
        rows = self.runner.parsed(args, "listing the Compose containers", parse_ps)
        wanted = {project: role for role, project in self.projects.items()}
        ids = [cid for cid, project in rows if project in wanted]
        found = {role: {} for role in ROLES}
        if not ids:
            return found
        args = [self.cli, "inspect", "--type", "container", *ids]
        rc, out, err = self.runner.run(args, "inspecting the containers", check=False)
        try:
            inspected = parse_inspect(out)
        except ValueError as exc:
            raise CommandError(
                f"inspecting the containers: cannot read the output ({exc})", args, rc, out, err
            ) from exc
        if rc != 0 and not inspected:
            raise CommandError(f"inspecting the containers failed (rc={rc}): {err.strip()[-2000:]}", args, rc, out, err)
        for cid, state in inspected.items():  # a container removed since `docker ps` is simply gone
            # A one-off container (`docker compose run`) comes and goes with its command: not the service.
            if state["project"] in wanted and not state["oneoff"]:
                found[wanted[state["project"]]][cid] = state
        return found

    def stats(self, cid):
        """(cpu ns, memory bytes) of one container from the Engine's one-shot stats."""
        try:
            stats = self.client().stats(cid, stream=False, one_shot=True)
        except DockerException as exc:
            if self.gone(cid, exc):
                return None, None  # removed meanwhile
            raise ContainerSourceError(f"sources.containers: reading the stats of {cid[:12]} failed: {exc}") from exc
        return cpu_ns(stats), memory_bytes(stats)

    def snapshot(self):
        found = self.containers()
        for states in found.values():
            for cid, state in states.items():
                state["cpu_ns"], state["memory_bytes"] = (
                    self.stats(cid) if state["state"] in ("running", "paused") else (None, None)
                )
        return found

    def count_logs(self, cid, since, until):
        """A LogCounter of the container's window; its `unreadable` says why there is none (a logging driver
        Docker cannot read back)."""
        counter = LogCounter(self.opts["log_patterns"])
        counter.unreadable = None
        for stdout in (True, False):  # one stream at a time: a traceback's lines stay together
            try:
                chunks = self.client().logs(
                    cid, stdout=stdout, stderr=not stdout, stream=True, follow=False, since=since, until=until
                )
                counter.feed_stream(chunks)
            except DockerException as exc:
                counter.unreadable = logs_unreadable(exc)
                if counter.unreadable or self.gone(cid, exc):
                    return counter
                raise ContainerSourceError(f"sources.containers: reading the logs of {cid[:12]} failed: {exc}") from exc
        return counter

    # -- the window ----------------------------------------------------------------------------------
    def begin(self):
        """Snapshot at the window's start: the containers, their restart counts, health and CPU time, and
        the time the logs are read from."""
        self.client()  # a missing SDK or an unreachable daemon is said before the window, not after it
        self.first = self.snapshot()
        self.started = time.time()
        self.started_mono = time.monotonic()

    def end(self, requests):
        """-> (metrics, figures) of the window since begin(); requests = {"baseline": n, "canary": n}."""
        if self.started is None:
            raise ContainerSourceError("sources.containers: end() without begin()")
        ended, seconds = time.time(), max(time.monotonic() - self.started_mono, 1e-6)
        last = self.snapshot()
        figures = {
            role: self.role_figures(role, self.first[role], last[role], (requests or {}).get(role) or 0, ended, seconds)
            for role in ROLES
        }
        canary, baseline = figures["canary"], figures["baseline"]
        metrics = [
            judge_health(canary, baseline),
            judge_restarts(canary, baseline, self.opts["max_restarts"]),
            judge_cpu(canary, baseline, self.opts, self.min_requests),
            judge_memory(canary, baseline, self.opts),
        ]
        unreadable = [fig["log_unreadable"] for fig in figures.values() if fig["log_unreadable"]]
        if unreadable:
            # No judgement rather than a failed gate (which would stop every release at its first step) or
            # an inconclusive one (which would hold it for ever): the operator is told once per run.
            self.warn(
                "sources.containers: the logs of "
                + "; ".join(unreadable)
                + " - log_errors is not judged (a logging driver Docker can read back, e.g. json-file, local "
                "or the dual logging cache, lets it be)"
            )
        else:
            metrics.append(judge_log_errors(canary, baseline, self.opts, self.min_requests))
        for fig in figures.values():  # used by the reasons; the gate has its own requests and window
            for key in ("not_healthy", "restarted", "requests", "seconds"):
                fig.pop(key)
        return metrics, figures

    def role_figures(self, role, first, last, requests, ended, seconds):
        restarts, restarted, not_healthy = 0, [], []
        cpu, healthy, unhealthy, starting, memory, lines, errors, examples = 0, 0, 0, 0, 0, 0, 0, []
        cpu_known, unreadable, jobs_done = False, [], 0
        for cid, state in last.items():
            before = first.get(cid)
            if before is None:
                # Created during the window: a container replaced (recreated) counts as a restart.
                count = 1 + state["restarts"]
                began_cpu = 0
            else:
                count = max(0, state["restarts"] - before["restarts"])
                if not count and before["started_at"] != state["started_at"]:
                    count = 1  # stopped and started again by hand: not counted by Docker, seen here
                began_cpu = before["cpu_ns"] or 0
            if completed(state):  # an init or migration job done: not unhealthy, no restart, nothing it serves
                jobs_done += 1
                continue
            if count:
                restarts += count
                restarted.append(f"{state['name']} ({count})")
            if state["cpu_ns"] is not None:
                cpu_known = True
                # A restart starts a new cgroup: the counter starts again from 0.
                cpu += state["cpu_ns"] - began_cpu if state["cpu_ns"] >= began_cpu else state["cpu_ns"]
            memory += state["memory_bytes"] or 0
            if state["state"] != "running" or state["health"] == "unhealthy":
                unhealthy += 1
                not_healthy.append(
                    f"{state['name']} {state['state']}" + (f"/{state['health']}" if state["health"] else "")
                )
            elif state["health"] == "starting":
                starting += 1
            else:
                healthy += 1
            counter = self.count_logs(cid, self.started, ended)
            if counter.unreadable:
                unreadable.append(f"{state['name']}: {counter.unreadable}")
            lines += counter.lines
            errors += counter.errors
            examples += counter.examples[: MAX_EXAMPLES - len(examples)]
        for cid, state in first.items():
            if cid not in last and not completed(state):  # a finished job removed is no restart
                restarts += 1
                restarted.append(f"{state['name']} (removed)")
        cpu_seconds = cpu / 1e9 if cpu_known else None
        return {
            "project": self.projects[role],
            "containers": len(last) - jobs_done,
            "healthy": healthy,
            "unhealthy": unhealthy,
            "starting": starting,
            "restarts": restarts,
            "requests": requests,
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu_seconds, 6) if cpu_seconds is not None else None,
            "cpu_percent": round(cpu_seconds / seconds * 100, 2) if cpu_seconds is not None else None,
            "memory_bytes": memory if len(last) > jobs_done else None,
            "log_lines": None if unreadable else lines,
            "log_errors": None if unreadable else errors,
            "log_error_examples": examples,
            "log_unreadable": "; ".join(unreadable) or None,
            "not_healthy": not_healthy,
            "restarted": restarted,
        }


def containers_argument_spec():
    """canary_gate's sources.containers (documented in plugins/modules/canary_gate.py)."""
    return {
        "type": "dict",
        "options": {
            "projects": {
                "type": "dict",
                "required": True,
                "options": {"baseline": {"type": "str", "required": True}, "canary": {"type": "str", "required": True}},
            },
            "docker_cli": {"type": "path", "default": DEFAULTS["docker_cli"]},
            "docker_host": {"type": "str"},
            "timeout": {"type": "float", "default": DEFAULTS["timeout"]},
            "log_patterns": {"type": "list", "elements": "str", "default": list(DEFAULT_LOG_PATTERNS)},
            "max_restarts": {"type": "int", "default": DEFAULTS["max_restarts"]},
            "max_cpu_ratio": {"type": "float", "default": DEFAULTS["max_cpu_ratio"]},
            "cpu_tolerance_ms": {"type": "float", "default": DEFAULTS["cpu_tolerance_ms"]},
            "max_memory_ratio": {"type": "float", "default": DEFAULTS["max_memory_ratio"]},
            "memory_tolerance_mib": {"type": "float", "default": DEFAULTS["memory_tolerance_mib"]},
            "max_log_error_ratio": {"type": "float", "default": DEFAULTS["max_log_error_ratio"]},
            "log_error_tolerance": {"type": "float", "default": DEFAULTS["log_error_tolerance"]},
            "max_log_errors": {"type": "int"},
        },
    }
