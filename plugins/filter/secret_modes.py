# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""secret_modes: the modes of the secret files of switchyard_secrets, refused when one lets others in.

A secret is read by its owner and, at most, its group (the application's gid, 0440): any bit for others,
group write, execute or a special bit is an error naming the entry, before any secret is written. A YAML
0440 arrives as the int 288 (already octal): both it and the string "0440" are the same mode. Only names
and modes are read: nothing of a secret's content gets into a result or an error.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

VARIABLE = "switchyard_secrets"
DEFAULT_MODE = "0400"
ALLOWED_BITS = 0o640
OCTAL_RE = re.compile(r"^(0o|0)?([0-7]{3})$")
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def mode_bits(value):
    """The permission bits of an int or an octal string; None when value is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = OCTAL_RE.match(value.strip()) if isinstance(value, str) else None
    return int(match.group(2), 8) if match else None


def secret_modes(secrets):
    """{name: '0400'-style mode} of every entry; AnsibleFilterError naming switchyard_secrets[i].mode otherwise."""
    if not isinstance(secrets, (list, tuple)):
        raise AnsibleFilterError(f"{VARIABLE} must be a list of entries (name, owner, group, mode, content)")
    modes = {}
    for index, entry in enumerate(secrets):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
            # The name is a path under <state dir>/secrets, written as root: a '/' or '..' would write elsewhere.
            raise AnsibleFilterError(
                f"{VARIABLE}[{index}].name={name!r}: a secret needs a file name under <state dir>/secrets - "
                "1 to 128 of letters, digits, '.', '_' and '-', not '.' or '..'"
            )
        value = entry.get("mode", DEFAULT_MODE)
        bits = mode_bits(value)
        if bits is None or bits < 0 or bits & ~ALLOWED_BITS:
            shown = oct(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
            raise AnsibleFilterError(
                f"{VARIABLE}[{index}].mode={shown} ({name}): a secret file is readable by its owner and at most its "
                "group - use an octal mode string such as '0400' (the default) or '0440'; no write for the group, "
                "nothing for others, no execute"
            )
        modes[name] = f"0{bits:03o}"
    return modes


class FilterModule:
    def filters(self):
        return {"secret_modes": secret_modes}
