# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Reads everything and decides, changes nothing, and says what would change.
    support: full
  diff_mode:
    description: Shows what it changes, before and after.
    support: full
  platform:
    description: Runs on the Docker host of the application (or the controller, for the database).
    support: full
    platforms: posix
"""
