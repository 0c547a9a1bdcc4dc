# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/release/store.py: state_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  app:
    description: The application, for example C(shop). Lower-case letters, digits, C(_) and C(-).
    type: str
    required: true
  path:
    description: The state directory of the application (ledger, lock). Defaults to C(/var/lib/switchyard/<app>).
    type: path
notes:
  - The state lives on the host the module runs on; run it on each Docker host of the application.
"""
