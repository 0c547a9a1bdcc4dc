"""The mask rule of common/secrets.py, checked with Ansible's own masking function (remove_values,
which AnsibleModule applies to every result with its no_log_values)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters
from ansible_collections.switchyard.release.plugins.module_utils.common.secrets import (
    MIN_MASKED_LENGTH,
    mask,
    read_secret_file,
)

RESULT = {"msg": "ok", "phase": "expand", "applied": [{"name": "display_name"}]}


class Module:
    """The two attributes of AnsibleModule that mask() uses."""

    def __init__(self) -> None:
        self.no_log_values: set[str] = set()
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def test_a_short_secret_would_garble_the_output_so_it_is_not_masked() -> None:
    # What the module did before: one character in the mask list garbles every word.
    assert remove_values(RESULT, {"a"})["phase"] != "expand"
    module = Module()
    shorts = ("Z", "Zq", "Zq9")
    for short in shorts:
        assert not mask(module, short, "password_file")
    assert module.no_log_values == set()
    assert remove_values(RESULT, module.no_log_values) == RESULT
    assert len(module.warnings) == 3 and all("password_file" in w for w in module.warnings)
    assert not any(short in w for w in module.warnings for short in shorts)  # named, never shown


def test_a_secret_long_enough_is_masked() -> None:
    module = Module()
    secret = "S3cr3t-xyz"
    assert len(secret) >= MIN_MASKED_LENGTH
    assert mask(module, secret, "password_file") and module.warnings == []
    assert remove_values({"msg": f"login as {secret} failed"}, module.no_log_values) == {
        "msg": "login as ******** failed"
    }
    assert mask(module, "abcd", "x") and not mask(module, "", "x") and not mask(module, None, "x")


def test_an_empty_secret_file_is_refused_naming_the_option_and_path(tmp_path: Path) -> None:
    empty = tmp_path / "pw"
    for content in ("", "\n", "\r\nsecond-line-not-read\n"):
        empty.write_text(content)
        with pytest.raises(InvalidParameters, match=rf"^password_file={empty}: the file is empty"):
            read_secret_file(str(empty), "password_file")
    empty.write_text("S3cr3t-xyz\nnext\n")
    assert read_secret_file(str(empty), "password_file") == "S3cr3t-xyz"
    with pytest.raises(InvalidParameters, match=r"password_file=.*/missing: No such file or directory"):
        read_secret_file(str(tmp_path / "missing"), "password_file")
