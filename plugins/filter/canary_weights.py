# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""canary_weights: the weights of the live and candidate colors for a canary percentage
(module_utils/release/weights.py computes them; the plan of release_state uses the same)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.release import weights


def canary_weights(percent, live, candidate):
    try:
        return weights.canary_weights(percent, live, candidate)
    except InvalidParameters as exc:
        raise AnsibleFilterError(exc.msg) from None


class FilterModule:
    def filters(self):
        return {"canary_weights": canary_weights}
