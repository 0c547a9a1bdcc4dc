"""What a drill measured: the RTO of a full and of a partial drill, the way back, the share and the failures, from
probes timed by the client and the colors the LB's log gave them."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.drill import rto
from ansible_collections.switchyard.release.plugins.module_utils.drill.probes import probe_url

TAG = "a1b2c3d4"


def probes(colors: str, start: float = 10.0, step: float = 0.01, statuses: dict | None = None) -> list[dict]:
    """One probe per letter (b blue, g green, - no color), sent every step from start, answered 2 ms later."""
    names = {"b": "blue", "g": "green", "-": None}
    return [
        {
            "n": n,
            "sent": start + n * step,
            "answered": start + n * step + 0.002,
            "status": (statuses or {}).get(n, 200),
            "color": names[c],
        }
        for n, c in enumerate(colors, start=1)
    ]


def test_a_full_drill_is_recovered_from_the_first_probe_after_which_every_one_went_to_the_target() -> None:
    taken = probes("ggbgbbbbbb")  # a last green answer at n=4: from n=5 on every probe is blue
    assert rto.time_to(taken, "blue", start=10.0, every=True) == 52.0


def test_a_partial_drill_is_recovered_at_the_first_probe_the_target_served() -> None:
    assert rto.time_to(probes("gggggbgggg"), "blue", start=10.0, every=False) == 62.0


def test_probes_before_the_shift_call_and_after_the_window_are_not_looked_at() -> None:
    taken = probes("bbgggbbbgg")  # blue before the shift call (10.035) is not the target's answer
    assert rto.time_to(taken, "blue", start=10.035, end=10.085, every=True) == 27.0
    assert rto.time_to(taken, "blue", start=10.035, end=10.095, every=True) is None  # green again at n=9
    assert rto.time_to(taken, "blue", start=10.035, end=10.055, every=False) is None


def test_a_target_that_never_served_or_stopped_serving_is_not_recovered() -> None:
    assert rto.time_to(probes("gggg"), "blue", start=10.0, every=False) is None
    assert rto.time_to(probes("bbbg"), "blue", start=10.0, every=True) is None


def test_a_failed_answer_is_not_served_even_by_the_target() -> None:
    taken = probes("gbbb", statuses={2: 503, 3: None})
    assert rto.time_to(taken, "blue", start=10.0, every=True) == 42.0
    assert rto.share(taken, "blue", 10.0, 11.0) == 25.0


def test_a_probe_missing_from_the_lbs_log_counts_for_no_color_unless_it_failed() -> None:
    taken = probes("gbb-bbbbbb")
    taken[3]["logged"] = False  # answered 200, but HAProxy dropped its log line
    assert rto.time_to(taken, "blue", start=10.0, every=True) == 22.0
    assert rto.share(taken, "blue", 10.015, 11.0) == 100.0
    failed = probes("gbb-bbbbbb", statuses={4: None})
    failed[3]["logged"] = False  # no answer at all: it breaks the run and counts against the share
    assert rto.time_to(failed, "blue", start=10.0, every=True) == 52.0
    assert rto.share(failed, "blue", 10.015, 11.0) == 88.9


def test_the_lbs_log_gives_each_probe_its_color_and_counts_the_failures() -> None:
    url = probe_url("http://127.0.0.1:8080", "/health", TAG, 2)
    target = url.split("8080", 1)[1]
    records = [
        (1.0, "api", "green", 200, target.replace(".2", ".1")),
        (1.1, "api", "blue", 200, target),
        (1.2, "api", None, 503, "/?switchyard-synthetic=1&switchyard-drill=a1b2c3d4.3"),
        (1.3, "api", "green", 502, "/items"),
        (1.4, "api", "green", 200, "/?switchyard-drill=ffffffff.4"),  # another drill's probe: real traffic here
    ]
    taken = [{"n": n, "sent": n, "answered": n, "status": 200} for n in (1, 2, 3, 4)]
    got = rto.attach_colors(taken, records, TAG)
    assert [(p["color"], p["lb_status"], p["logged"]) for p in got] == [
        ("green", 200, True),
        ("blue", 200, True),
        (None, 503, True),
        (None, None, False),
    ]
    assert rto.failures(records, TAG) == {"real": 1, "probes": 1, "total": 2}
    assert rto.summary(got) == {"sent": 4, "answered": 4, "failed": 0, "unlogged": 1}


def test_a_probe_url_keeps_its_own_query_after_the_markers() -> None:
    assert probe_url("http://lb:8080/", "/search?q=1", TAG, 7) == (
        "http://lb:8080/search?switchyard-synthetic=1&switchyard-drill=a1b2c3d4.7&q=1"
    )
