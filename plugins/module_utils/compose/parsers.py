# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parsers for what the docker CLI prints, tested on recorded output of the versions in use.

Compose changed its JSON output across versions (an array before 2.21, one object per line
since): parse_json_stream accepts both.
"""

from __future__ import annotations

import json

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
ONEOFF_LABEL = "com.docker.compose.oneoff"
NUMBER_LABEL = "com.docker.compose.container-number"


def parse_json_stream(text):
    """A JSON array, a single object, or one JSON object per line -> list of objects."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_config_hashes(text):
    """`docker compose config --hash '*'` -> {service: hash}."""
    hashes = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            hashes[parts[0]] = parts[1]
        elif parts:
            raise ValueError(f"unexpected line in 'docker compose config --hash' output: {line!r}")
    return hashes


def summarize_container(inspected):
    """One `docker inspect` object -> the facts a release needs about the container."""
    labels = inspected.get("Config", {}).get("Labels") or {}
    state = inspected.get("State", {})
    health = state.get("Health") or {}
    image_ref = inspected.get("Config", {}).get("Image", "")
    digest = image_ref.split("@", 1)[1] if "@" in image_ref else None
    return {
        "id": inspected["Id"][:12],
        "name": inspected.get("Name", "").lstrip("/"),
        "service": labels.get(SERVICE_LABEL),
        "number": int(labels.get(NUMBER_LABEL) or 0),
        "oneoff": labels.get(ONEOFF_LABEL, "False") == "True",
        "state": state.get("Status"),
        "exit_code": state.get("ExitCode"),
        "restart_count": inspected.get("RestartCount", 0),
        "health": health.get("Status"),
        "image": image_ref,
        "image_id": inspected.get("Image"),
        "digest": digest,
        "config_hash": labels.get(CONFIG_HASH_LABEL),
        "networks": {
            name: net.get("IPAddress") or None
            for name, net in sorted(((inspected.get("NetworkSettings") or {}).get("Networks") or {}).items())
        },
        "labels": {k: v for k, v in labels.items() if not k.startswith(("com.docker.compose.", "org.opencontainers."))},
    }


def health_outputs(inspected, last=3):
    """The last healthcheck outputs of a container, newest last."""
    logs = ((inspected.get("State") or {}).get("Health") or {}).get("Log") or []
    return [
        {"exit_code": entry.get("ExitCode"), "output": (entry.get("Output") or "").strip()[-500:]}
        for entry in logs[-last:]
    ]
