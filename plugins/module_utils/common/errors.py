# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one exception base of the collection.

Every error a module reports is a SwitchyardError: its message and the fields that go into the
failure result (cmd/rc/stdout/stderr, the ledger, the servers...) travel together, so every
module's main() has one except clause for expected failures.
"""

from __future__ import annotations


class SwitchyardError(Exception):
    """msg, plus details that fail_json reports beside it."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def result(self):
        """The keyword arguments of module.fail_json."""
        return {**self.details, "msg": self.msg}


class InvalidParameters(SwitchyardError, ValueError):
    """Parameters that argument_spec cannot check; raised before anything is read or changed (a ValueError too)."""


class OutputParseError(SwitchyardError, ValueError):
    """A tool printed something its parser does not understand (also a ValueError, as parsers raise)."""
