# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Image references (registry/repository[:tag][@digest]) and what it means to be pinned."""

from __future__ import annotations

import re

DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


class ImageReference:
    """A parsed image reference. Pinned means it names a digest: the content, not a label."""

    def __init__(self, name, tag=None, digest=None):
        self.name = name
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or not text or any(c.isspace() for c in text):
            raise ValueError(f"not an image reference: {text!r}")
        name, digest = text, None
        if "@" in text:
            name, digest = text.split("@", 1)
            if not DIGEST_RE.match(digest):
                raise ValueError(f"not a valid digest in image reference {text!r}: {digest!r}")
        tag = None
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = name.rsplit(":", 1)
        if not name:
            raise ValueError(f"not an image reference: {text!r}")
        return cls(name, tag, digest)

    @property
    def pinned(self):
        return self.digest is not None

    def pinned_to(self, digest):
        """The reference by digest alone (a tag next to a digest is ignored by Docker anyway)."""
        return f"{self.name}@{digest}"

    def __str__(self):
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
