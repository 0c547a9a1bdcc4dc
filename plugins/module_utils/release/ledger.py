# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release ledger of one application on one Docker host, as a document: which color is live,
which one was, what each color runs, the migrations applied and contracted, and what every release
did. JSON, schema 1, in <path>/ledger.json; it changes only through release/transitions.py."""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError

SCHEMA = 1
LEDGER_FILE = "ledger.json"
COLORS = ("blue", "green")
KINDS = ("release", "rollback", "contract")
DEFAULT_HISTORY_LIMIT = 50


class LedgerError(SwitchyardError):
    """A refusal or an unreadable ledger; details go into the module's failure result."""


def empty_ledger(app):
    """The ledger of an application never released on this host."""
    return {
        "schema": SCHEMA,
        "app": app,
        "live": None,
        "previous": None,
        "colors": {},
        "weights": {},
        "migrations": {"applied": [], "contracted": [], "last_contract_at": None},
        "releases": [],
        "takeovers": [],
        "updated_at": None,
    }


def _expect(condition, source, what):
    if not condition:
        raise LedgerError(
            f"the ledger {source} is damaged: {what}; it was left as it is - repair it, or move it away to start "
            "from an empty ledger (the live color is then unknown)"
        )


def parse_ledger(text, app, source):
    """The ledger in text (read from source, which messages name), checked and completed."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LedgerError(
            f"the ledger {source} is not valid JSON ({exc}); it was left as it is - repair it, or move it away "
            "to start from an empty ledger (the live color is then unknown)"
        ) from exc
    _expect(isinstance(doc, dict), source, "it is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise LedgerError(
            f"the ledger {source} has schema {doc.get('schema')!r}; this module reads and writes schema {SCHEMA}"
        )
    if doc.get("app") != app:
        raise LedgerError(f"the ledger {source} belongs to app {doc.get('app')!r}, not {app!r}: check the path option")
    ledger = empty_ledger(app)
    for key, value in doc.items():
        if key == "migrations" and isinstance(value, dict):
            ledger["migrations"].update(value)
        else:
            ledger[key] = value
    for key in ("live", "previous"):
        _expect(ledger[key] is None or ledger[key] in COLORS, source, f"{key} is {ledger[key]!r}")
    for key in ("colors", "weights"):
        _expect(isinstance(ledger[key], dict), source, f"{key} is not an object")
    for key in ("releases", "takeovers"):
        _expect(isinstance(ledger[key], list), source, f"{key} is not a list")
    # Rollback drills (playbooks/drill.yml): only in ledgers that recorded one.
    _expect(isinstance(ledger.get("drills", []), list), source, "drills is not a list")
    _expect(
        all(isinstance(entry, dict) and "id" in entry for entry in ledger["releases"]),
        source,
        "a release has no id",
    )
    return ledger


def dump_ledger(ledger):
    return json.dumps(ledger, indent=2, sort_keys=True) + "\n"


def find_release(ledger, release_id):
    for entry in ledger["releases"]:
        if entry["id"] == release_id:
            return entry
    return None


def other_color(color):
    return COLORS[1] if color == COLORS[0] else COLORS[0]
