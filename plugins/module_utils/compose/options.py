# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with doc_fragments/compose.py (the options every module that drives a project shares).
"""The argument specs of a Compose project: compose_project's whole, and the part the recreate module shares (the
project, its files and images, the waits) - one definition, so both validate and default them alike."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec

# The options of doc_fragments/compose.py.
SHARED = (
    "project",
    "files",
    "project_dir",
    "env_files",
    "profiles",
    "docker_host",
    "docker_cli",
    "resolve_digests",
    "require_digest",
    "wait_timeout",
    "stop_timeout",
    "labels",
)


def compose_argument_spec():
    """compose_project's options."""
    return {
        "project": {"type": "str", "required": True},
        "files": {"type": "list", "elements": "path", "default": []},
        "project_dir": {"type": "path"},
        "env_files": {"type": "list", "elements": "path", "default": []},
        "profiles": {"type": "list", "elements": "str", "default": []},
        "docker_host": {"type": "str"},
        "docker_cli": {"type": "path", "default": "docker"},
        "state": {
            "type": "str",
            "choices": ["present", "stopped", "started", "absent", "restarted", "unchanged", "pulled"],
            "default": "present",
        },
        "images": {"type": "dict", "default": {}},
        "resolve_digests": {"type": "bool", "default": True},
        "require_digest": {"type": "bool", "default": True},
        "images_only": {"type": "bool", "default": False},
        "pull": {"type": "str", "choices": ["missing", "always", "never"], "default": "missing"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 120},
        "stop_timeout": {"type": "int", "default": 15},
        "labels": {"type": "dict", "default": {}},
        "stop_first": {"type": "bool", "default": False},
        "staged_dir": {"type": "path"},
        "remove_orphans": {"type": "bool", "default": False},
        "remove_volumes": {"type": "bool", "default": False},
        "run": {
            "type": "dict",
            "options": {
                "service": {"type": "str", "required": True},
                "command": {"type": "raw"},
                "image": {"type": "str"},
                "environment": {"type": "dict", "default": {}, "no_log": True},
                "public_environment": {"type": "dict", "default": {}},
                "timeout": {"type": "int"},
            },
        },
        **lease_argument_spec(),
    }


def project_argument_spec():
    """The options of one project that a module driving it shares with compose_project (doc_fragments/compose.py)."""
    spec = compose_argument_spec()
    return {name: spec[name] for name in SHARED}
