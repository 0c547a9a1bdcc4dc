"""The secret_modes filter: a secret file is readable by its owner and at most its group; any other mode is
refused naming the entry and its file, never showing the content."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.secret_modes import secret_modes


def test_default_and_allowed_modes() -> None:
    secrets = [
        {"name": "a", "content": "x"},
        {"name": "b", "mode": "0440", "group": 10001},
        {"name": "c", "mode": 0o440},  # YAML 0440 without quotes
        {"name": "d", "mode": "600"},
        {"name": "e", "mode": "0o400"},
    ]
    assert secret_modes(secrets) == {"a": "0400", "b": "0440", "c": "0440", "d": "0600", "e": "0400"}


@pytest.mark.parametrize(
    ("mode", "shown"),
    [
        ("0644", "'0644'"),
        (0o444, "0o444"),
        ("0460", "'0460'"),
        ("0500", "'0500'"),
        ("4400", "'4400'"),
        ("u=r", "'u=r'"),
        (True, "True"),
        ("0404", "'0404'"),
    ],
)
def test_a_mode_that_lets_others_in_is_refused_naming_the_entry(mode, shown) -> None:
    secrets = [{"name": "ok"}, {"name": "db_password", "mode": mode, "content": "s3cr3t-value"}]
    with pytest.raises(AnsibleFilterError) as refused:
        secret_modes(secrets)
    message = str(refused.value)
    assert f"switchyard_secrets[1].mode={shown} (db_password)" in message and "'0440'" in message
    assert "s3cr3t-value" not in message


def test_an_entry_without_a_name_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match=r"switchyard_secrets\[0\]\.name=None: a secret needs a file name"):
        secret_modes([{"content": "s3cr3t-value"}])


@pytest.mark.parametrize("name", ["../lb/etc/haproxy.cfg", "..", ".", "a/b", "", "db password", None, "x\n"])
def test_a_name_that_is_not_a_file_name_under_secrets_is_refused(name) -> None:
    """The name is a path written as root under <state dir>/secrets: nothing may lead out of it."""
    with pytest.raises(AnsibleFilterError, match=r"switchyard_secrets\[0\]\.name=.*a file name under"):
        secret_modes([{"name": name, "content": "never shown"}])
