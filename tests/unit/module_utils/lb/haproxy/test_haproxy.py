"""HAProxy Runtime API parsers and the configuration rewriter, on output recorded from HAProxy
2.6.12 (the testbed image) and the configuration the lb role renders."""

from __future__ import annotations

import pytest
from support.recorded import HAPROXY

from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.config import (
    ConfigError,
    servers_in_config,
    set_servers,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.parsers import (
    admin_state_name,
    parse_info,
    parse_servers_state,
    parse_stat,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.runtime import parse_address, split_answers
from ansible_collections.switchyard.release.plugins.module_utils.lb.haproxy.weights import shares, state_essentials

RECORDED = HAPROXY


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_servers_state_gives_user_weight_and_admin_state() -> None:
    servers = parse_servers_state(recorded("show-servers-state.txt"))["be_api"]
    assert servers["api_blue"]["weight"] == 256 and servers["api_blue"]["state"] == "ready"
    # 0x28: forced drain, plus resolution maint (the color's name is not in DNS): the user state is drain.
    assert servers["api_green"]["admin_state"] == 0x28 and servers["api_green"]["state"] == "drain"
    assert servers["api_green"]["fqdn"] == "api-green" and servers["api_green"]["port"] == "8000"


@pytest.mark.parametrize(
    ("bits", "state"),
    [
        (0, "ready"),
        (0x01, "maint"),
        (0x04, "maint"),
        (0x08, "drain"),
        (0x20, "ready"),
        (0x21, "maint"),
        (0x10, "ready"),
    ],
)
def test_admin_state_names(bits: int, state: str) -> None:
    assert admin_state_name(bits) == state


def test_servers_state_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="version line"):
        parse_servers_state("Can't find backend.\n")


def test_stat_csv_per_server() -> None:
    rows = parse_stat(recorded("show-stat-be_api.csv"))
    green = rows[("be_api", "api_green")]
    assert green["status"] == "MAINT (resolution)" and green["scur"] == 0 and green["uweight"] == 0
    assert isinstance(rows[("be_api", "api_blue")]["weight"], int)


def test_info() -> None:
    info = parse_info(recorded("show-info.txt"))
    assert info["Version"].startswith("2.6.") and info["Pid"].isdigit()


def test_answers_of_commands_sent_together() -> None:
    commands = [
        "set weight be_api/api_green 10",
        "set weight be_api/nope 5",
        "set weight be_api/api_green 300",
        "set server be_api/api_green state ready",
    ]
    answers = split_answers(commands, recorded("set-commands.txt"))
    assert [m for _c, m in answers] == [
        "",
        "No such server.",
        "Absolute weight can only be between 0 and 256 inclusive.",
        "",
    ]


@pytest.mark.parametrize(
    ("address", "family_target"),
    [
        ("/run/haproxy/admin.sock", "/run/haproxy/admin.sock"),
        ("unix:///run/a.sock", "/run/a.sock"),
        ("tcp://127.0.0.1:9999", ("127.0.0.1", 9999)),
    ],
)
def test_socket_addresses(address: str, family_target) -> None:
    assert parse_address(address)[1] == family_target


@pytest.mark.parametrize("address", ["admin.sock", "tcp://127.0.0.1", "tcp://:99"])
def test_bad_socket_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="socket="):
        parse_address(address)


def test_config_servers_of_the_rendered_lb_config() -> None:
    servers = servers_in_config(recorded("haproxy.cfg"))
    assert servers == {
        "be_api": {"api_blue": {"weight": 256, "disabled": False}, "api_green": {"weight": 0, "disabled": False}}
    }


def test_rewrite_changes_only_the_servers_asked() -> None:
    text = recorded("haproxy.cfg")
    new = set_servers(
        text, "be_api", {"api_green": {"weight": 230, "disabled": False}, "api_blue": {"weight": 26, "disabled": True}}
    )
    changed = [(a, b) for a, b in zip(text.split("\n"), new.split("\n"), strict=True) if a != b]
    assert changed == [
        ("    server api_blue api-blue:8000 weight 256", "    server api_blue api-blue:8000 weight 26 disabled"),
        ("    server api_green api-green:8000 weight 0", "    server api_green api-green:8000 weight 230"),
    ]
    assert servers_in_config(new)["be_api"]["api_blue"] == {"weight": 26, "disabled": True}
    back = set_servers(
        new, "be_api", {"api_blue": {"weight": 256, "disabled": False}, "api_green": {"weight": 0, "disabled": False}}
    )
    assert back == text


def test_rewrite_adds_a_weight_keeps_comments_and_other_backends() -> None:
    text = (
        "backend be_a\n    server s1 10.0.0.1:80 check  # primary\nbackend be_b\n    server s1 10.0.0.2:80 weight 5\n"
    )
    new = set_servers(text, "be_a", {"s1": {"weight": 7, "disabled": None}})
    assert new.splitlines()[1] == "    server s1 10.0.0.1:80 check weight 7  # primary"
    assert new.splitlines()[3] == "    server s1 10.0.0.2:80 weight 5"
    assert servers_in_config(text)["be_a"]["s1"]["weight"] == 1  # HAProxy's default


@pytest.mark.parametrize(
    ("line", "change", "expected"),
    [
        # The lb role's template: `weight N[ disabled][ cookie C]`, kept in that order: its next run changes nothing.
        ("weight 256 cookie blue", {"weight": 77, "disabled": False}, "weight 77 cookie blue"),
        ("weight 256 cookie blue", {"weight": 0, "disabled": True}, "weight 0 disabled cookie blue"),
        ("weight 0 disabled cookie blue", {"weight": 10, "disabled": False}, "weight 10 cookie blue"),
        ("weight 0 cookie blue", {"weight": None, "disabled": True}, "weight 0 disabled cookie blue"),
        ("cookie blue", {"weight": None, "disabled": True}, "cookie blue disabled"),
        ("weight 3 check weight 4 cookie x", {"weight": 9, "disabled": None}, "weight 9 check cookie x"),
    ],
)
def test_rewrite_keeps_the_order_of_the_keywords(line: str, change: dict, expected: str) -> None:
    text = f"backend be_a\n    server s1 s1:80 {line}\n"
    assert set_servers(text, "be_a", {"s1": change}) == f"backend be_a\n    server s1 s1:80 {expected}\n"


def test_rewrite_refuses_an_unknown_server() -> None:
    with pytest.raises(ConfigError, match="no server api_red in backend be_api"):
        set_servers(recorded("haproxy.cfg"), "be_api", {"api_red": {"weight": 1}})


def test_shares_count_only_ready_up_servers() -> None:
    servers = {
        "blue": {"weight": 230, "state": "ready", "up": True},
        "green": {"weight": 26, "state": "ready", "up": True},
        "old": {"weight": 100, "state": "maint", "up": False},
    }
    assert shares(servers) == {"blue": 89.84, "green": 10.16, "old": 0.0}
    assert shares({"a": {"weight": 0, "state": "ready", "up": True}}) == {"a": 0.0}


def test_state_file_comparison_ignores_check_timings() -> None:
    text = recorded("show-servers-state.txt")
    moved = text.replace(" 928 ", " 999 ")
    assert moved != text and state_essentials(moved) == state_essentials(text)
    assert state_essentials(text.replace(" 0 40 0 0 ", " 0 40 9 0 ")) != state_essentials(text)
    assert state_essentials("") is None
