# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""canary_gate_settings: whether the canary gate judges, and its window, from two variables that often
arrive as strings (AWX surveys, -e). The gate fails closed: only an explicit false turns it off, and
while it is on, a window that is not a positive number (0, "", "abc") is an error, never "no gate"."""

from __future__ import annotations

import math
import re

from ansible.errors import AnsibleFilterError

FALSE_WORDS = ("false", "no", "off", "0", "n", "f")
DECIMAL_RE = re.compile(r"^([0-9]+[.]?[0-9]*|[.][0-9]+)$")


def gate_enabled(value):
    """Only false, no, off, 0, n, f (any case) turn the gate off; anything else keeps it on."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE_WORDS


def canary_gate_settings(window, enabled=True):
    """{"enabled": bool, "window": float seconds (0.0 when the gate is off)}."""
    on = gate_enabled(enabled)
    if not on:
        return {"enabled": False, "window": 0.0}
    text = str(window).strip() if not isinstance(window, bool) else ""
    seconds = float(text) if DECIMAL_RE.match(text) else 0.0
    if not (seconds > 0 and math.isfinite(seconds)):
        raise AnsibleFilterError(
            f'switchyard_canary_window must be a positive number of seconds (such as 60, "60" or 30.5) while the '
            f'canary gate is enabled (got "{window}"). A window of 0 or "" does not turn the gate off: to release '
            "without judging the canary steps, set switchyard_gate_enabled=false."
        )
    return {"enabled": True, "window": seconds}


class FilterModule:
    def filters(self):
        return {"canary_gate_settings": canary_gate_settings}
