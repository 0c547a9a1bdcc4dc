"""request_records on every LB kind: the lines `docker logs` gives (recorded formats, served here by a stand-in
docker client that prints them), each request with its route, color, status and target - probes and real traffic
alike, and where the kind logs it, a request no server took (color None)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from support.recorded import FIXTURES

from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer

SINCE = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)
PROBE = "/health?switchyard-synthetic=1&switchyard-drill=a1b2c3d4.7"

# `docker logs --timestamps` of HAProxy with the lb role's log format (%t %ci %b/%s %ST %Tr %Ta %B %{+Q}r).
STAMP = "2026-12-04T04:16:38.0{0}0000000Z 04/Dec/2026:04:16:38.0{0}0 192.168.208.1"
HAPROXY_LINES = [
    STAMP.format(1) + ' be_api/api_green 200 0 0 182 "GET / HTTP/1.1"',
    STAMP.format(2) + f' be_api/api_blue 200 1 1 181 "GET {PROBE} HTTP/1.1"',
    STAMP.format(3) + ' be_api/<NOSRV> 503 -1 0 217 "GET /x HTTP/1.1"',
    STAMP.format(4) + ' be_web/web_blue 200 0 0 181 "GET /w HTTP/1.1"',
    "2026-12-04T04:16:38.050000000Z [WARNING]  (8) : Server be_api/api_blue is DOWN",
]


def docker_stand_in(tmp_path: Path, lines: list[str]) -> str:
    """A docker client that prints lines for `docker logs` (as the real one prints the LB's log)."""
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n")
    script = tmp_path / "docker"
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'log.txt'}\n")
    script.chmod(0o755)
    return str(script)


def records(tmp_path: Path, kind: str, lines: list[str], routes=("api",)) -> list[tuple]:
    lb = load_balancer(
        {"kind": kind, "dir": str(tmp_path), "container": "lb-1", "docker_cli": docker_stand_in(tmp_path, lines)},
        runner=None,
    )
    return lb.request_records(list(routes), SINCE, SINCE + datetime.timedelta(hours=6))


def test_haproxy_probes_real_requests_and_requests_no_server_took(tmp_path: Path) -> None:
    got = records(tmp_path, "haproxy", HAPROXY_LINES)
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        ("api", "green", 200, "/"),
        ("api", "blue", 200, PROBE),
        ("api", None, 503, "/x"),
    ]
    assert got[1][0] == pytest.approx(datetime.datetime(2026, 12, 4, 4, 16, 38, 20000, tzinfo=datetime.UTC).timestamp())


def test_nginx_records_with_their_targets(tmp_path: Path) -> None:
    recorded = (FIXTURES / "nginx-1.22.1" / "access-timestamps.log").read_text().splitlines()
    probe = recorded[4].replace('"GET / HTTP/1.1"', f'"GET {PROBE} HTTP/1.1"')  # api/blue
    error = recorded[-1]  # nginx's own error line: no request of a route
    got = records(tmp_path, "nginx", [*recorded[:2], probe, error])
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        ("api", "green", 200, "/"),
        ("api", "green", 200, "/"),
        ("api", "blue", 200, PROBE),
    ]


def test_traefik_records_with_their_request_paths(tmp_path: Path) -> None:
    first = (FIXTURES / "traefik-3.7.15" / "access.log").read_text().splitlines()[0]
    stamp, _space, body = first.partition(" ")
    entry = json.loads(body)
    probe = json.dumps({**entry, "RequestPath": PROBE, "ServiceName": "api-green@file"})
    # The LB's container logs without docker's timestamps: Traefik's StartUTC dates each request.
    got = records(tmp_path, "traefik", [body, probe, '{"level":"info","msg":"Configuration loaded"}'])
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        ("api", "blue", 200, "/items?switchyard-synthetic=1"),
        ("api", "green", 200, PROBE),
    ]
    assert stamp.startswith("2026-12-04")
