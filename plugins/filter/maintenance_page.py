# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""maintenance_page: the page the LB answers while a route is in maintenance (lb/page.py), checked before the lb
role renders it into any kind's configuration."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.page import maintenance_page as page


def maintenance_page(body, body_file_content=None, retry_after=30):
    try:
        return page(body, body_file_content, retry_after)
    except SwitchyardError as exc:
        raise AnsibleFilterError(exc.msg) from exc


class FilterModule:
    def filters(self):
        return {"maintenance_page": maintenance_page}
