"""The hosts of a release batch (module_utils/release/fleet.py): its plan and its synchronisation points."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.release import fleet


def test_a_batch_of_several_hosts_moves_together_and_its_first_host_leads() -> None:
    plan = fleet.plan("fleet", ["h1", "h2", "h3"], ["h1", "h2", "h3"])
    assert plan == {
        "mode": "fleet",
        "hosts": ["h1", "h2", "h3"],
        "size": 3,
        "leader": "h1",
        "lockstep": True,
        "first_batch": True,
    }


def test_hosts_with_nothing_to_do_leave_the_batch_and_the_next_one_leads() -> None:
    plan = fleet.plan("fleet", ["h1", "h2", "h3"], ["h1", "h2", "h3"], done=["h1", "h3"])
    assert plan["hosts"] == ["h2"] and plan["leader"] == "h2" and not plan["lockstep"]


def test_every_host_done_is_an_empty_batch() -> None:
    plan = fleet.plan("wave", ["h1"], ["h1", "h2"], done=["h1"])
    assert plan["hosts"] == [] and plan["leader"] == "" and not plan["lockstep"]


def test_a_later_wave_is_not_the_first_batch() -> None:
    plan = fleet.plan("wave", ["h2"], ["h1", "h2"])
    assert plan["leader"] == "h2" and not plan["first_batch"] and not plan["lockstep"]


@pytest.mark.parametrize("mode", ["", "rolling", "Fleet", None])
def test_an_unknown_mode_is_refused_naming_the_variable_and_the_choices(mode) -> None:
    with pytest.raises(InvalidParameters, match=r"switchyard_fleet_mode must be one of fleet, wave"):
        fleet.plan(mode, ["h1"], ["h1"])


def test_a_host_that_did_not_reach_the_point_is_dropped() -> None:
    marks = {"h1": "canary-25", "h2": "canary-10", "h3": "canary-25"}
    assert fleet.dropped(["h1", "h2", "h3"], marks, "canary-25") == ["h2"]


def test_a_host_unreachable_before_any_point_has_no_mark_and_is_dropped() -> None:
    assert fleet.dropped(["h1", "h2"], {"h1": "deploy"}, "deploy") == ["h2"]
    assert fleet.dropped(["h1", "h2"], {"h1": "deploy", "h2": "deploy"}, "deploy") == []


def test_the_hosts_agree_when_every_one_runs_the_same_version() -> None:
    view = fleet.summary("shop", {"h1": {"color": "green", "version": "v2"}, "h2": {"color": "blue", "version": "v2"}})
    assert view["consistent"] and view["version"] == "v2" and view["disagree"] == []
    assert view["line"] == "shop: v2 on every host (2: h1, h2)"


def test_a_host_on_another_version_or_on_nothing_disagrees_and_is_named() -> None:
    view = fleet.summary(
        "shop",
        {
            "h1": {"color": "green", "version": "v2"},
            "h2": {"color": "green", "version": "v2"},
            "h3": {"color": "blue", "version": "v1"},
            "h4": {"color": "", "version": ""},
        },
    )
    assert not view["consistent"] and view["version"] == "v2" and view["disagree"] == ["h3", "h4"]
    assert view["line"] == "shop: the hosts disagree - v2 on h1, h2; nothing live on h4; v1 on h3; not on v2: h3, h4"
    assert view["versions"] == {"v2": ["h1", "h2"], "v1": ["h3"], "": ["h4"]}


def release_plan(live="blue", steps=(25, 100), resume=None, pause=None, recreate=None) -> dict:
    """The fields of release_state's plan that decide which synchronisation points a host goes through."""
    return {
        "live": live,
        "steps": list(steps),
        "resume_after_step": resume,
        "pause_after": pause,
        "recreate": recreate,
        "candidate": "green" if live == "blue" else "blue",
    }


def test_hosts_on_different_colors_with_the_same_steps_move_together() -> None:
    plans = {"h1": release_plan(live="blue"), "h2": release_plan(live="green")}
    assert fleet.plan("fleet", ["h1", "h2"], ["h1", "h2"], plans=plans)["lockstep"]


def test_a_new_host_among_released_ones_is_refused_with_what_to_run() -> None:
    plans = {"h1": release_plan(), "h2": release_plan(), "h3": release_plan(live="", steps=(100,))}
    with pytest.raises(InvalidParameters) as raised:
        fleet.plan("fleet", ["h1", "h2", "h3"], ["h1", "h2", "h3"], plans=plans)
    assert raised.value.msg.startswith("The hosts of this batch cannot move together")
    assert "h1, h2: steps 25 %, 100 %; h3: never released" in raised.value.msg
    assert "-l h3 -e switchyard_version=<that version>" in raised.value.msg
    assert "Nothing was changed." in raised.value.msg


def test_a_release_resumed_on_some_hosts_only_is_refused() -> None:
    plans = {"h1": release_plan(resume=25, steps=(100,)), "h2": release_plan(steps=(100,))}
    with pytest.raises(InvalidParameters, match=r"h1: resuming after the 25 % step, steps 100 %; h2: steps 100 %"):
        fleet.plan("fleet", ["h1", "h2"], ["h1", "h2"], plans=plans)


def test_a_host_with_nothing_to_do_does_not_count_against_the_others() -> None:
    plans = {"h1": release_plan(), "h2": release_plan(live="", steps=(100,)), "h3": release_plan()}
    plan = fleet.plan("fleet", ["h1", "h2", "h3"], ["h1", "h2", "h3"], done=["h2"], plans=plans)
    assert plan["hosts"] == ["h1", "h3"]


def test_wave_mode_the_plays_serial_did_not_see_is_refused() -> None:
    with pytest.raises(InvalidParameters, match=r"switchyard_fleet_mode=wave is set where the play's serial cannot"):
        fleet.plan("wave", ["h1", "h2"], ["h1", "h2"], serial="")
    # serial 1 in the inventory too: the play's serial saw neither, and made one batch of both hosts.
    with pytest.raises(InvalidParameters, match=r"holds 3 of the 3 hosts, more than the waves asked for"):
        fleet.plan("wave", ["h1", "h2", "h3"], ["h1", "h2", "h3"], serial=1)
    # Given as extra vars: the batches are the waves asked for.
    assert fleet.plan("wave", ["h1", "h2"], ["h1", "h2"], serial="100%")["lockstep"]
    assert fleet.plan("wave", ["h1", "h2"], ["h1", "h2", "h3", "h4"], serial=["1", "50%"])["lockstep"]
    assert fleet.plan("wave", ["h1", "h2"], ["h1", "h2"], serial=0)["lockstep"]
    assert not fleet.plan("wave", ["h1"], ["h1", "h2"], serial="")["lockstep"]
    # Not checked when the caller does not ask (the second plan of a release, with the hosts' plans).
    assert fleet.plan("wave", ["h1", "h2"], ["h1", "h2"])["lockstep"]


@pytest.mark.parametrize(
    ("serial", "hosts", "largest"),
    [("", 3, 1), (None, 3, 1), (2, 3, 2), ("2", 3, 2), ("50%", 4, 2), ("10%", 4, 1), ([1, "25%", "100%"], 8, 8)],
)
def test_the_largest_batch_of_a_serial_is_ansibles(serial, hosts, largest) -> None:
    assert fleet._largest_batch(serial, hosts) == largest
