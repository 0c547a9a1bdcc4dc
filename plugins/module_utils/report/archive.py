# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The archive kept with a release report: the LB configuration as deployed, the Compose files and the
rendered override, the run's summary and the ledger entry - never a secret.

A name does not say whether a value is secret (`DATABASE_URL`, `SENTRY_DSN`, `STRIPE_KEY`...): so an env
file keeps its keys and loses every value, and so does every `environment:` of a Compose file. Files under
a `secrets` directory are left out; elsewhere the userinfo of every URL, the value of every assignment whose
name looks secret and each known secret value are masked.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile

from ansible_collections.switchyard.release.plugins.module_utils.common.files import fsync_directory
from ansible_collections.switchyard.release.plugins.module_utils.common.masking import MASK

# An env or YAML `NAME=value` / `NAME: value` whose name says it holds a secret.
SECRET_NAME_WORDS = ("password", "passwd", "secret", "token", "credential", "private", "api_key", "apikey")
ASSIGNMENT_RE = re.compile(r"^(\s*-?\s*[\"']?)([A-Za-z_][\w.-]*)([\"']?\s*[=:]\s*)(.+)$")
# `scheme://userinfo@`: the userinfo (user, password or token) is masked whole.
URL_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@\"'<>]+@")
ENV_LINE_RE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][\w.-]*)(\s*=\s*)(.*)$")
YAML_ENVIRONMENT_RE = re.compile(r"^(\s*)environment:\s*(.*?)\s*$")
YAML_ENTRY_RE = re.compile(r"^(\s*)(-\s*)?([\"']?)([^\s=:\"'#][^=:\"']*?)([\"']?\s*[=:])(\s*)(.*?)\s*$")


def is_secret_name(name, extra=()):
    lowered = name.lower()
    return any(word in lowered for word in SECRET_NAME_WORDS) or name in extra


def is_env_file(name):
    base = os.path.basename(name)
    return base == ".env" or base.endswith(".env") or base == "env"


def is_yaml_file(name):
    return name.endswith((".yaml", ".yml"))


def _opens_quote(value):
    """The quote a value opens and does not close on its line (a multi-line quoted env value), or None."""
    if value[:1] in ("'", '"'):
        quote = value[0]
        rest = value[1:].replace("\\\\", "").replace("\\" + quote, "")
        if quote not in rest:
            return quote
    return None


def masked_env(text):
    """An env file with its keys kept and every value masked (a multi-line quoted value whole);
    comments and blank lines kept, any other line masked."""
    lines, quote = [], None
    for line in text.splitlines():
        if quote:  # inside a multi-line quoted value: dropped up to its closing quote
            if quote in line.replace("\\\\", "").replace("\\" + quote, ""):
                quote = None
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            lines.append(line)
            continue
        match = ENV_LINE_RE.match(line)
        if not match:
            lines.append(MASK)
            continue
        quote = _opens_quote(match.group(4).strip())
        value = MASK if match.group(4).strip() else ""
        lines.append(f"{match.group(1)}{match.group(2)}{match.group(3)}{value}")
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def _masked_flow(value):
    """An inline `environment: {A: b}` / `[A=b]` with every value masked."""
    if value.startswith("{"):
        items = [i.split(":", 1)[0].strip() for i in value.strip("{} ").split(",") if i.strip()]
        return "{" + ", ".join(f"{k}: {MASK}" for k in items) + "}"
    items = [i.split("=", 1)[0].strip() for i in value.strip("[] ").split(",") if i.strip()]
    return "[" + ", ".join(f"{k}={MASK}" for k in items) + "]"


def masked_yaml_environment(text):
    """A Compose file with every value of every `environment:` masked, keys kept: a block scalar or a
    multi-line value is masked whole (its continuation lines dropped). The rest is kept as is."""
    out = []
    block = None  # [indent of `environment:`, indent of its entries or None]
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block is not None:
            env_indent, entry_indent = block
            if not stripped:
                out.append(line)
                continue
            if indent > env_indent:
                if entry_indent is None:
                    entry_indent = block[1] = indent if not stripped.startswith("#") else None
                if entry_indent is None or indent > entry_indent or stripped.startswith("#"):
                    continue  # a continuation of a masked value, or a comment: dropped
                match = YAML_ENTRY_RE.match(line)
                if not match and re.fullmatch(r"-\s*[\"']?[A-Za-z_][\w.-]*[\"']?", stripped):
                    out.append(line)  # `- NAME`: a key alone, its value from the host's environment
                    continue
                if not match:
                    out.append(f"{line[:indent]}{'- ' if stripped.startswith('-') else ''}{MASK}")
                    continue
                head, dash, quote, key, sep, space, value = match.groups()
                if value and not value.startswith("#"):
                    value = MASK
                    space = space or ("" if "=" in sep else " ")
                else:
                    value, space = "", ""
                out.append(f"{head}{dash or ''}{quote}{key}{sep}{space}{value}")
                continue
            block = None
        match = YAML_ENVIRONMENT_RE.match(line)
        if match:
            value = match.group(2)
            if value and not value.startswith("#"):
                line = f"{match.group(1)}environment: {_masked_flow(value)}"
            else:
                block = [len(match.group(1)), None]
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def masked(text, secret_names=(), secret_values=()):
    """text with every URL's userinfo masked, the value of every secret-named assignment, then each known
    secret value."""
    text = URL_USERINFO_RE.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    lines = []
    for line in text.splitlines(keepends=True):
        match = ASSIGNMENT_RE.match(line.rstrip("\n"))
        # A value on the line is masked, a JSON or YAML structure opened there is judged line by line.
        if (
            match
            and is_secret_name(match.group(2), secret_names)
            and match.group(4).strip() not in ("{", "[", "|", ">")
        ):
            end = "\n" if line.endswith("\n") else ""
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}{MASK}{end}"
        lines.append(line)
    text = "".join(lines)
    for value in sorted(secret_values, key=len, reverse=True):
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def masked_file(name, text, secret_names=(), secret_values=()):
    """The archived text of a file: an env file with every value masked, a Compose file with every value
    of its `environment:` masked, then what masked() masks anywhere."""
    if is_env_file(name):
        text = masked_env(text)
    elif is_yaml_file(name):
        text = masked_yaml_environment(text)
    return masked(text, secret_names, secret_values)


def is_secret_path(path):
    parts = os.path.normpath(path).split(os.sep)
    return "secrets" in parts or os.path.basename(path).startswith(".")


def archive_members(prefix, files, entry, run, secret_names=(), secret_values=()):
    """({archive name: bytes}, {included, excluded}) of the archive: each of files {archive name: host path}
    masked, the ledger entry and the run's summary."""
    members, included, excluded = {}, [], []
    for name, path in sorted(files.items()):
        if is_secret_path(path):
            excluded.append({"path": path, "why": "a secret file"})
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            excluded.append({"path": path, "why": "missing"})
            continue
        except UnicodeDecodeError:
            excluded.append({"path": path, "why": "not text"})
            continue
        kind = name if (is_env_file(name) or is_yaml_file(name)) else path
        members[f"{prefix}/{name}"] = masked_file(kind, text, secret_names, secret_values).encode()
        included.append(name)
    for name, document in (("ledger-entry.json", entry), ("ansible-run.json", run)):
        text = masked(json.dumps(document, indent=2, sort_keys=True) + "\n", secret_names, secret_values)
        members[f"{prefix}/{name}"] = text.encode()
        included.append(name)
    return members, {"included": included, "excluded": excluded}


def read_members(path):
    """{name: bytes} of an existing archive, or None when there is none (or it cannot be read)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError, EOFError):
        return None


def write_archive(dest, members):
    """Write dest (tar.gz, mode 0600) atomically: a temporary file in its directory, then a rename."""
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".switchyard-", suffix=".tar.gz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as tar:
                for name, data in members.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mode = 0o600
                    tar.addfile(info, io.BytesIO(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def build_archive(dest, prefix, files, entry, run, secret_names=(), secret_values=()):
    """Write dest (tar.gz) atomically; returns {included: [names], excluded: [{path, why}]}."""
    members, listing = archive_members(prefix, files, entry, run, secret_names, secret_values)
    write_archive(dest, members)
    return listing
