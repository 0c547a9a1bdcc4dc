# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-request evidence from an LB's request log, whatever the kind: statuses and latencies per color,
real and synthetic apart, and the stream of `docker logs` they are read from.

Each kind parses its own log format (lb/<kind>/log.py) into these; the canary gate and the release report
only ever see Samples and (epoch, route, color, status, latency) records.
"""

from __future__ import annotations

import os
import re
import subprocess

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import SYNTHETIC_MARKER, LBError

# The request line's target (quoted or not; an absolute URI over HTTP/2), wherever it stands in the line.
REQUEST_RE = re.compile(r'(?:^|\s)"?[A-Z]+ (\S+) HTTP/\d')
MARKER_RE = re.compile(r"[?&]" + re.escape(SYNTHETIC_MARKER) + r"(?:&|#|$)")


def is_synthetic_target(target):
    """Whether a request target (path and query) carries the synthetic marker in its query."""
    return bool(target and MARKER_RE.search(target))


def request_target(line):
    """The target (path and query) of the logged request line, or None."""
    request = REQUEST_RE.search(line)
    return request.group(1) if request else None


def is_synthetic(line):
    """Whether the logged request line's target carries the synthetic marker in its query."""
    request = REQUEST_RE.search(line)
    return bool(request and is_synthetic_target(request.group(1)))


class Samples:
    def __init__(self):
        self.statuses = []
        self.latencies_ms = []  # total time of requests that got an answer from the server

    def add(self, status, response_ms, total_ms):
        self.statuses.append(status)
        if response_ms >= 0 and total_ms >= 0:
            self.latencies_ms.append(total_ms)

    @property
    def requests(self):
        return len(self.statuses)

    @property
    def errors(self):
        """5xx answers and requests that got no answer (status -1)."""
        return sum(1 for s in self.statuses if s >= 500 or s < 0)


class ServerSamples(Samples):
    """Every request of one server (or color), and apart its real and its synthetic ones."""

    def __init__(self):
        super().__init__()
        self.real = Samples()
        self.synthetic = Samples()

    def add(self, status, response_ms, total_ms, synthetic=False):
        super().add(status, response_ms, total_ms)
        (self.synthetic if synthetic else self.real).add(status, response_ms, total_ms)


class ContainerLog:
    """`docker logs` of the LB's container over [since, until], read as a stream of lines (stdout and stderr
    in one stream), so memory never grows with the log's size. Use as a context manager; iterate lines;
    a failure of docker itself raises LBError at the end, with its last non-matching lines."""

    def __init__(self, runner, docker, container, since, until, timestamps=True):
        self.args = [docker, "logs"] + (["--timestamps"] if timestamps else [])
        self.args += ["--since", since.isoformat(), "--until", until.isoformat(), container]
        self.container = container
        self.env = {**os.environ, **getattr(runner, "environ", {})}
        self.process = None

    def __enter__(self):
        try:
            self.process = subprocess.Popen(
                self.args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise LBError(f"cannot run {self.args[0]} logs: {exc}") from exc
        return self

    def lines(self, keep_other=None):
        """The log's lines; keep_other(line) says which lines are not the LB's own (kept as docker's error)."""
        self.other = []
        for line in self.process.stdout:
            if keep_other is not None and keep_other(line):
                self.other = (self.other + [line.rstrip()])[-20:]
                continue
            yield line

    def __exit__(self, exc_type, exc, tb):
        rc = self.process.wait() if exc_type is None else (self.process.kill() or self.process.wait())
        self.process.stdout.close()
        if exc_type is None and rc != 0:
            said = " / ".join(getattr(self, "other", []))[-1000:]
            raise LBError(f"reading the logs of {self.container} failed (rc={rc}): {said}")
        return False
