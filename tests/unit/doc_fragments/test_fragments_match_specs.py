"""Each doc fragment documents exactly the argument_spec it is paired with: the same options, and for
each the same type, elements, default, required and choices, suboptions against options recursively."""

from __future__ import annotations

import importlib

import pytest
import yaml

from ansible_collections.switchyard.release.plugins.module_utils.canary.judge import limits_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.compose.options import project_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.migrations.connection import (
    connection_argument_spec,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.store import state_argument_spec

FRAGMENTS = "ansible_collections.switchyard.release.plugins.doc_fragments"
# What a key means when it is absent, in the documentation as in an argument_spec.
ABSENT = {"type": "str", "elements": None, "default": None, "required": False, "choices": None}

PAIRS = [
    pytest.param("postgres", connection_argument_spec, id="postgres"),
    pytest.param("state", state_argument_spec, id="state"),
    pytest.param("lb", lb_argument_spec, id="lb"),
    pytest.param("lease", lease_argument_spec, id="lease"),
    pytest.param("compose", project_argument_spec, id="compose"),
    pytest.param("gate_limits", limits_argument_spec, id="gate_limits"),
]


def fragment_options(name: str) -> dict:
    module = importlib.import_module(f"{FRAGMENTS}.{name}")
    return yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)["options"]


def differences(documented: dict, spec: dict, where: str = "") -> list[str]:
    """Where the documented options and the spec disagree, one line each (empty: they agree)."""
    found = []
    for name in sorted(set(documented) - set(spec)):
        found.append(f"{where}{name}: documented, not in the spec")
    for name in sorted(set(spec) - set(documented)):
        found.append(f"{where}{name}: in the spec, not documented")
    for name in sorted(set(documented) & set(spec)):
        doc, arg = documented[name], spec[name]
        for key, absent in ABSENT.items():
            doc_value, arg_value = doc.get(key, absent), arg.get(key, absent)
            if key == "choices" and doc_value is not None and arg_value is not None:
                doc_value, arg_value = list(doc_value), list(arg_value)
            if doc_value != arg_value:
                found.append(f"{where}{name}.{key}: documented {doc_value!r}, spec {arg_value!r}")
        found.extend(differences(doc.get("suboptions") or {}, arg.get("options") or {}, f"{where}{name}."))
    return found


@pytest.mark.parametrize(("fragment", "spec"), PAIRS)
def test_fragment_documents_its_argument_spec(fragment: str, spec) -> None:
    assert differences(fragment_options(fragment), spec()) == []


def test_differences_sees_a_mismatch() -> None:
    """The comparison itself: a wrong default, a missing option, a wrong suboption are all reported."""
    documented = {
        "a": {"type": "int", "default": 1},
        "b": {"type": "dict", "suboptions": {"c": {"type": "str", "choices": ["x"]}}},
        "only_doc": {"type": "str"},
    }
    spec = {
        "a": {"type": "int", "default": 2},
        "b": {"type": "dict", "options": {"c": {"type": "str", "choices": ["x", "y"]}}},
    }
    assert differences(documented, spec) == [
        "only_doc: documented, not in the spec",
        "a.default: documented 1, spec 2",
        "b.c.choices: documented ['x'], spec ['x', 'y']",
    ]
