"""The canary map (X-Canary: 1 -> the candidate): the map file and `show map` as HAProxy 2.6.12 answers it
(recorded), and the order of set_canary - the file first, then the Runtime API, read back - against a stand-in
for the socket that answers like HAProxy (the real one: tests/integration/test_lb_exposure.py)."""

from __future__ import annotations

import pytest
from support.recorded import HAPROXY

from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.canary import (
    CanaryMapError,
    map_entries,
    parse_show_map,
    set_canary,
    with_color,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import RuntimeAPIUnreachable

MAP_ID = "/usr/local/etc/haproxy/canary.map"
FILE = "# The color `X-Canary: 1` reaches.\n1 green\n"


def test_show_map_as_haproxy_answers() -> None:
    assert parse_show_map((HAPROXY / "show-map-canary.txt").read_text()) == {"1": "green"}
    assert parse_show_map("\n") == {}
    with pytest.raises(CanaryMapError, match="Unknown map identifier"):
        parse_show_map((HAPROXY / "show-map-unknown.txt").read_text())


def test_the_map_file_is_rewritten_in_place() -> None:
    assert map_entries(FILE) == {"1": "green"}
    assert with_color(FILE, "blue") == "# The color `X-Canary: 1` reaches.\n1 blue\n"
    assert with_color("# nothing yet\n", "blue") == "# nothing yet\n1 blue\n"


class Socket:
    """Answers show/set/add map like HAProxy (recorded formats); unreachable when told so."""

    def __init__(self, entries=None, reachable=True):
        self.entries = None if entries is None else dict(entries)
        self.reachable = reachable
        self.sent: list[str] = []

    def query(self, command):
        if not self.reachable:
            raise RuntimeAPIUnreachable("cannot connect to the HAProxy socket")
        self.sent.append(command)
        if self.entries is None:
            return (HAPROXY / "show-map-unknown.txt").read_text()
        return "".join(f"0x56439a95e540 {k} {v}\n" for k, v in self.entries.items()) + "\n"

    def execute(self, commands):
        self.sent.extend(commands)
        answers = []
        for command in commands:
            verb, _map, _id, key, value = command.split()
            if verb == "set" and key not in self.entries:
                answers.append((command, "entry not found."))
                continue
            self.entries[key] = value
            answers.append((command, ""))
        return answers


def test_set_canary_writes_the_file_then_haproxy_and_reads_back(tmp_path) -> None:
    path = tmp_path / "canary.map"
    path.write_text(FILE)
    path.chmod(0o640)
    admin, master = Socket(reachable=False), Socket({"1": "green"})
    check = set_canary(str(path), MAP_ID, "blue", [admin, master], check_mode=True)
    assert check["changed"] and check["commands"] == [f"set map {MAP_ID} 1 blue"]
    assert path.read_text() == FILE and master.entries == {"1": "green"}
    guarded = []
    done = set_canary(str(path), MAP_ID, "blue", [admin, master], guard=lambda: guarded.append(1))
    assert (done["changed"], done["before"], done["after"], done["file_before"]) == (True, "green", "blue", "green")
    assert guarded == [1] and master.entries == {"1": "blue"}
    assert path.read_text().endswith("1 blue\n") and oct(path.stat().st_mode & 0o777) == "0o640"
    assert master.sent[-2:] == [f"set map {MAP_ID} 1 blue", f"show map {MAP_ID}"]
    again = set_canary(str(path), MAP_ID, "blue", [admin, master])
    assert again["changed"] is False and again["commands"] == []


def test_a_map_without_the_key_gets_it_added_and_a_stale_file_is_fixed(tmp_path) -> None:
    path = tmp_path / "canary.map"
    path.write_text("1 blue\n")
    haproxy = Socket({})
    done = set_canary(str(path), MAP_ID, "green", [haproxy])
    assert done["commands"] == [f"add map {MAP_ID} 1 green"] and haproxy.entries == {"1": "green"}
    haproxy.entries = {"1": "green"}
    path.write_text("1 blue\n")  # the file alone says otherwise: fixed, nothing sent
    fixed = set_canary(str(path), MAP_ID, "green", [haproxy])
    assert fixed["changed"] and fixed["commands"] == [] and path.read_text() == "1 green\n"


def test_refusals_change_nothing(tmp_path) -> None:
    path = tmp_path / "canary.map"
    with pytest.raises(CanaryMapError, match="canary.map is missing: run the lb role"):
        set_canary(str(path), MAP_ID, "blue", [Socket({"1": "green"})])
    path.write_text(FILE)
    with pytest.raises(CanaryMapError, match="no canary map .* run the lb role"):
        set_canary(str(path), MAP_ID, "blue", [Socket(None)])
    with pytest.raises(CanaryMapError, match="canary='red': use one of blue, green"):
        set_canary(str(path), MAP_ID, "red", [Socket({"1": "green"})])
    with pytest.raises(Exception, match="cannot set the canary map: cannot connect"):
        set_canary(str(path), MAP_ID, "blue", [Socket(reachable=False)])
    assert path.read_text() == FILE
