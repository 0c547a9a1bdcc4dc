# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether the migrations directory still agrees with the history, checked before anything runs.

Three ways it stops agreeing, each refused by default because each means the directory no longer
describes the schema: a file whose phase was applied is gone (`deleted`: it still ran somewhere,
and nothing says what), a never-applied version numbered below an applied one (`out_of_order`:
it would run after versions written on top of the schema it predates), and a number missing from
the sequence of version directories (`gap`: usually a file lost in a merge or a copy).

A gap counts version directories, not phase files: a version without a contract.sql is no gap.
Only versions up to `target` count, since later ones cannot run yet; the lowest version may be
any number (a squashed history starts where it starts)."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.switchyard.release.plugins.module_utils.migrations.catalog import PHASE_FILES
from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import MigrationError

KINDS = ("deleted", "out_of_order", "gap")
FIXES = {
    "deleted": "restore each deleted file exactly as it was applied (the history keeps its checksum)",
    "out_of_order": "renumber each pending version above the highest applied one",
    "gap": "restore each missing version directory, or renumber the versions after the gap",
}


@dataclass
class Irregularity:
    kind: str
    version: int
    message: str

    def as_dict(self):
        return {"kind": self.kind, "version": self.version, "message": self.message}


def label(version, name=None):
    return f"{version:04d}_{name}" if name else f"{version:04d}"


def find(versions, phase, applied, partial, pending, target=None, exempt=()):
    """The irregularities of one phase, deleted first, then out of order, then gaps.

    versions: catalog.scan() of the directory; applied / partial: {version: name} of the files the
    history has fully / partly (some statement groups) applied in this phase; pending: the versions
    this run would apply; exempt: versions whose file may be gone (a backfill whose contract ran)."""
    found = []
    file_name = PHASE_FILES[phase]
    for version, name in sorted({**applied, **partial}.items()):
        there = versions.get(version)
        if (there is not None and phase in there.files) or version in exempt:
            continue
        how = "applied" if version in applied else "partly applied"
        gone = f"{there.label}/{file_name} is gone" if there else f"version {label(version, name)} is gone"
        found.append(Irregularity("deleted", version, f"{gone} but its {phase} phase was {how}"))
    if applied:
        highest = max(applied)
        for version in sorted(pending):
            if version < highest:
                found.append(
                    Irregularity(
                        "out_of_order",
                        version,
                        f"{label(version, _name(versions, version))} is pending but "
                        f"{label(highest, applied[highest])} is already applied ({phase})",
                    )
                )
    deleted = {item.version for item in found if item.kind == "deleted"}
    numbers = sorted(v for v in versions if target is None or v <= target)
    for before, after in zip(numbers, numbers[1:]):
        missing = [n for n in range(before + 1, after) if n not in deleted]
        if missing:
            what = f"version {label(missing[0])} is" if len(missing) == 1 else f"versions {_span(missing)} are"
            found.append(
                Irregularity(
                    "gap",
                    missing[0],
                    f"{what} missing between {versions[before].label} and {versions[after].label}",
                )
            )
    return found


def _span(numbers):
    """0003-0005 for a run of consecutive numbers, else 0003, 0005."""
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{label(numbers[0])}-{label(numbers[-1])}"
    return ", ".join(label(n) for n in numbers)


def _name(versions, version):
    there = versions.get(version)
    return there.name if there else None


def refuse(found, allowed, phase, path):
    """Raise for what allow_irregular does not accept; return the accepted ones (to warn about)."""
    refused = [item for item in found if item.kind not in allowed]
    if refused:
        kinds = sorted({item.kind for item in refused}, key=KINDS.index)
        raise MigrationError(
            f"the migrations directory {path} does not agree with the {phase} history; nothing was run: "
            + "; ".join(item.message for item in refused)
            + ". To fix it: "
            + "; ".join(FIXES[kind] for kind in kinds)
            + f" - or accept it knowingly with allow_irregular={kinds}",
            irregularities=[item.as_dict() for item in found],
        )
    return [item for item in found if item.kind in allowed]
