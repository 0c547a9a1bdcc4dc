"""Whether the migrations directory agrees with the history: deleted applied files, versions out of
order and gaps, each named; what allow_irregular accepts."""

from __future__ import annotations

import pytest

from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import VersionDir
from ansible_collections.switchyard.release.plugins.module_utils.migrations.order import find, refuse
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import MigrationError


def directory(*versions: tuple[int, str, tuple[str, ...]]) -> dict[int, VersionDir]:
    """{version: VersionDir} as catalog.scan() returns it, without a real directory."""
    files = {"expand": "expand.sql", "migrate": "backfill.yml", "contract": "contract.sql"}
    return {
        number: VersionDir(
            number, name, f"m/{number:04d}_{name}", {p: f"m/{number:04d}_{name}/{files[p]}" for p in phases}
        )
        for number, name, phases in versions
    }


def found(*args, **kwargs) -> list[tuple[str, int, str]]:
    return [(i.kind, i.version, i.message) for i in find(*args, **kwargs)]


DEMO = directory((1, "items", ("expand",)), (2, "display", ("expand", "migrate", "contract")))


def test_a_directory_that_agrees_has_nothing_to_say() -> None:
    assert found(DEMO, "expand", {1: "items"}, {}, [2]) == []
    assert found(DEMO, "contract", {}, {}, [2]) == []


def test_a_deleted_phase_file_and_a_deleted_version_are_named() -> None:
    versions = directory((1, "items", ()), (3, "note", ("expand",)))
    assert found(versions, "expand", {1: "items", 2: "display"}, {}, [3]) == [
        ("deleted", 1, "0001_items/expand.sql is gone but its expand phase was applied"),
        ("deleted", 2, "version 0002_display is gone but its expand phase was applied"),
    ]


def test_a_partly_applied_file_that_is_gone_is_named_too() -> None:
    versions = directory((1, "items", ("expand",)))
    assert found(versions, "expand", {1: "items"}, {2: "display"}, []) == [
        ("deleted", 2, "version 0002_display is gone but its expand phase was partly applied"),
    ]


def test_an_exempt_version_may_be_gone() -> None:
    """A backfill whose contract ran never runs again: its backfill.yml may be deleted."""
    versions = directory((1, "items", ("expand",)), (2, "display", ("expand", "contract")))
    assert found(versions, "migrate", {2: "display"}, {}, [], exempt={2}) == []


def test_a_pending_version_below_the_highest_applied_one_is_out_of_order() -> None:
    versions = directory((1, "a", ("expand",)), (2, "b", ("contract",)), (3, "c", ("expand",)))
    versions[2].files["expand"] = "m/0002_b/expand.sql"
    assert found(versions, "expand", {1: "a", 3: "c"}, {}, [2]) == [
        ("out_of_order", 2, "0002_b is pending but 0003_c is already applied (expand)"),
    ]


def test_gaps_count_version_directories_up_to_the_target() -> None:
    versions = directory((1, "a", ("expand",)), (2, "b", ()), (4, "d", ("expand",)), (8, "h", ("expand",)))
    assert found(versions, "expand", {}, {}, [1, 4, 8]) == [
        ("gap", 3, "version 0003 is missing between 0002_b and 0004_d"),
        ("gap", 5, "versions 0005-0007 are missing between 0004_d and 0008_h"),
    ]
    assert found(versions, "expand", {}, {}, [1, 4], target=4) == [
        ("gap", 3, "version 0003 is missing between 0002_b and 0004_d"),
    ]
    assert found(versions, "expand", {}, {}, [1], target=2) == []


def test_the_first_version_may_be_any_number() -> None:
    """A squashed history starts where it starts."""
    assert found(directory((10, "base", ("expand",)), (11, "next", ("expand",))), "expand", {}, {}, [10, 11]) == []


def test_a_deleted_version_is_not_also_called_a_gap() -> None:
    versions = directory((1, "a", ("expand",)), (3, "c", ("expand",)), (6, "f", ("expand",)))
    kinds = found(versions, "expand", {1: "a", 2: "b", 3: "c", 4: "d"}, {}, [6])
    assert kinds == [
        ("deleted", 2, "version 0002_b is gone but its expand phase was applied"),
        ("deleted", 4, "version 0004_d is gone but its expand phase was applied"),
        ("gap", 5, "version 0005 is missing between 0003_c and 0006_f"),
    ]
    gaps = find(directory((1, "a", ()), (5, "e", ())), "expand", {3: "c"}, {}, [])
    assert [(g.kind, g.message) for g in gaps if g.kind == "gap"] == [
        ("gap", "versions 0002, 0004 are missing between 0001_a and 0005_e")
    ]


def test_refuse_names_everything_and_what_to_do_unless_accepted() -> None:
    versions = directory((1, "a", ("expand",)), (3, "c", ("expand",)))
    irregular = find(versions, "expand", {3: "c", 2: "b"}, {}, [1])
    with pytest.raises(MigrationError) as refused:
        refuse(irregular, [], "expand", "/srv/m")
    message = refused.value.msg
    assert message.startswith("the migrations directory /srv/m does not agree with the expand history; nothing was run")
    assert "version 0002_b is gone" in message and "0001_a is pending but 0003_c is already applied" in message
    assert "restore each deleted file" in message and "renumber each pending version" in message
    assert message.endswith("allow_irregular=['deleted', 'out_of_order']")
    assert [i["kind"] for i in refused.value.details["irregularities"]] == ["deleted", "out_of_order"]

    with pytest.raises(MigrationError, match=r"allow_irregular=\['out_of_order'\]"):
        refuse(irregular, ["deleted"], "expand", "/srv/m")
    accepted = refuse(irregular, ["deleted", "out_of_order"], "expand", "/srv/m")
    assert [i.kind for i in accepted] == ["deleted", "out_of_order"]
