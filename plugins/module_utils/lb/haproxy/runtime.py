# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A client for HAProxy's Runtime API (the stats socket), over a unix socket or TCP.

Several commands go in one session, separated by ';' on one line: HAProxy runs them in order and
answers each with its output followed by an empty line. So no command (nor the master CLI prefix)
may hold a ';' or a newline: names are checked before (names.py), and the client refuses what is left.
"""

from __future__ import annotations

import os
import socket

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.names import check_command, check_prefix
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.parsers import (
    parse_info,
    parse_servers_state,
    parse_stat,
)


class RuntimeAPIError(SwitchyardError):
    """The Runtime API failed during a command."""


class RuntimeAPIUnreachable(RuntimeAPIError):
    """Nothing answers on the socket: HAProxy is down, or the path is wrong."""


def parse_address(address):
    """'tcp://127.0.0.1:9999' -> (AF_INET, (host, port)); a path (or unix://path) -> (AF_UNIX, path)."""
    if address.startswith("tcp://"):
        host, _colon, port = address[len("tcp://") :].rpartition(":")
        if not host or not port.isdigit():
            raise InvalidParameters(f"socket={address!r}: use tcp://HOST:PORT or a unix socket path")
        return socket.AF_INET, (host.strip("[]"), int(port))
    path = address[len("unix://") :] if address.startswith("unix://") else address
    if not os.path.isabs(path):
        raise InvalidParameters(f"socket={address!r}: a unix socket must be an absolute path (or tcp://HOST:PORT)")
    return socket.AF_UNIX, path


def split_answers(commands, output):
    """The output of one-line-answer commands sent together -> [(command, message)].

    Each answer is its message (empty on success) followed by an empty line.
    """
    lines = output.split("\n")
    answers = []
    for command in commands:
        message = []
        while lines and lines[0] != "":
            message.append(lines.pop(0))
        if lines:
            lines.pop(0)
        answers.append((command, "\n".join(message).strip()))
    return answers


class RuntimeAPI:
    def __init__(self, address, timeout=5.0, prefix=""):
        self.address = address
        self.family, self.target = parse_address(address)
        self.timeout = timeout
        self.prefix = check_prefix("prefix", prefix)  # "@1 " to reach worker 1 through the master CLI
        self.sent = []

    def _exchange(self, line):
        try:
            sock = socket.socket(self.family, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.target)
        except OSError as exc:
            raise RuntimeAPIUnreachable(f"cannot connect to the HAProxy socket {self.address}: {exc}") from exc
        try:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except OSError as exc:
            raise RuntimeAPIError(f"the HAProxy socket {self.address} failed during {line!r}: {exc}") from exc
        finally:
            sock.close()
        return b"".join(chunks).decode(errors="replace")

    def _line(self, commands):
        line = ";".join(self.prefix + check_command(c) for c in commands)
        # The master CLI keeps the connection open after answering: ask it to close.
        return line + ";quit" if self.prefix else line

    def query(self, command):
        """One read-only command; its whole output."""
        self.sent.append(command)
        return self._exchange(self._line([command]))

    def execute(self, commands):
        """Commands with one-line answers (set ...), in one session: [(command, message)], message
        empty when the command succeeded."""
        if not commands:
            return []
        self.sent.extend(commands)
        return split_answers(commands, self._exchange(self._line(commands)))

    def servers_state(self, backend=None):
        return parse_servers_state(self.query("show servers state" + (f" {backend}" if backend else "")))

    def stat(self, backend):
        return parse_stat(self.query(f"show stat {backend} 4 -1"))

    def backend_algorithm(self, backend):
        """The backend's balance algorithm, from its `show stat` row (None when not reported)."""
        rows = parse_stat(self.query(f"show stat {backend} 2 -1"))
        return (rows.get((backend, "BACKEND")) or {}).get("algo") or None

    def info(self):
        return parse_info(self.query("show info"))

    def cli_level(self):
        return self.query("show cli level").strip()
