# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""canary_weights: the HAProxy weights of the live and candidate colors for a canary percentage.

One place turns "10 %" into weights, so the plan that --check prints and the weights the canary
role sets are the same numbers.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

MAX_WEIGHT = 256  # HAProxy's highest server weight: the finest split it can express


def canary_weights(percent, live, candidate):
    try:
        share = float(percent)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"canary_weights: percent must be a number from 0 to 100, got {percent!r}") from None
    if not 0 <= share <= 100:
        raise AnsibleFilterError(f"canary_weights: percent must be from 0 to 100, got {percent!r}")
    colors = {"blue", "green"}
    if candidate not in colors or (live and live not in colors) or live == candidate:
        raise AnsibleFilterError(
            f"canary_weights: candidate must be blue or green and live the other one or empty, "
            f"got live={live!r} candidate={candidate!r}"
        )
    weight = int(round(MAX_WEIGHT * share / 100))
    if not live:
        return {candidate: MAX_WEIGHT}
    return {live: MAX_WEIGHT - weight, candidate: weight}


class FilterModule:
    def filters(self):
        return {"canary_weights": canary_weights}
