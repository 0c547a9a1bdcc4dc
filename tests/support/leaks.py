"""Looking for a secret where it must not be: in a module's result, in the command lines of every process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path


def strings(obj) -> Iterator[str]:
    """Every string of a JSON-like value, keys included (json.dumps would escape quotes and backslashes)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from strings(value)
    elif obj is not None:
        yield str(obj)


def occurrences(obj, secret: str) -> int:
    return sum(s.count(secret) for s in strings(obj))


def command_lines_while(future, secret: str, collect: str = "") -> tuple[int, set[str]]:
    """Scan every process's command line (what `ps` shows) until future is done: the occurrences of secret,
    and the arguments seen that end with collect (when given)."""
    hits, seen = 0, set()
    marker = secret.encode()
    while not future.done():
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                raw = cmdline.read_bytes()
            except OSError:  # the process ended meanwhile
                continue
            hits += raw.count(marker)
            if collect:
                seen.update(a for a in raw.decode(errors="replace").split("\0") if a.endswith(collect))
        time.sleep(0.05)
    return hits, seen
