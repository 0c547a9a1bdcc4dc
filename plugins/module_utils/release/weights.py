# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A canary percentage as the weights of the live and candidate colors.

One place turns "10 %" into weights, so the plan that --check prints, the weights the traffic
module sets and the ones the ledger records are the same numbers.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.lb.base import COLORS, MAX_WEIGHT


def canary_weights(percent, live, candidate):
    """{live: 256 - w, candidate: w} with w the percent of 256; a first release: {candidate: 256}."""
    try:
        share = float(percent)
    except (TypeError, ValueError):
        raise InvalidParameters(f"canary_weights: percent must be a number from 0 to 100, got {percent!r}") from None
    if not 0 <= share <= 100:
        raise InvalidParameters(f"canary_weights: percent must be from 0 to 100, got {percent!r}")
    if candidate not in COLORS or (live and live not in COLORS) or live == candidate:
        raise InvalidParameters(
            f"canary_weights: candidate must be blue or green and live the other one or empty, "
            f"got live={live!r} candidate={candidate!r}"
        )
    weight = int(round(MAX_WEIGHT * share / 100))
    if not live:
        return {candidate: MAX_WEIGHT}
    return {live: MAX_WEIGHT - weight, candidate: weight}
