"""The env_file filter: one variable per line; a key or value that would add a line of its own is refused
naming the variable and the key, never showing the value."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.filter.env_file import compose_environment, env_file


def test_lines_in_order_values_as_given() -> None:
    values = {"SWITCHYARD_VERSION": "v2", "URL": "postgres://a:b@db/x?c=d#f", "P": '$HOME "q"', "N": 3, "E": ""}
    content = env_file(values)
    assert content == "SWITCHYARD_VERSION='v2'\nURL='postgres://a:b@db/x?c=d#f'\nP='$HOME \"q\"'\nN='3'\nE=''\n"


@pytest.mark.parametrize("value", ["v2\nDATABASE_URL=postgres://evil", "a\rb", "a\x00b", "'x' EVIL=/", "it's", "pw\\"])
def test_a_value_that_would_add_a_line_is_refused_without_showing_it(value: str) -> None:
    with pytest.raises(AnsibleFilterError) as refused:
        env_file({"SWITCHYARD_VERSION": value}, "switchyard_compose_env")
    message = str(refused.value)
    assert "switchyard_compose_env.SWITCHYARD_VERSION holds a single quote, newline" in message
    assert "ends with a backslash" in message
    assert value not in message and "evil" not in message.lower()


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A=B", "A B", "", "A\nB"])
def test_a_key_that_is_not_a_variable_name_is_refused(key: str) -> None:
    with pytest.raises(AnsibleFilterError, match="switchyard_data_env: .* is not a variable name"):
        env_file({key: "x"}, "switchyard_data_env")


@pytest.mark.parametrize("value", [None, {"a": 1}, [1]])
def test_a_value_that_is_not_a_scalar_is_refused(value) -> None:
    with pytest.raises(AnsibleFilterError, match=r"switchyard_data_env\.K must be a string"):
        env_file({"K": value}, "switchyard_data_env")


def test_a_container_environment_is_taken_literally_by_compose() -> None:
    """A `$` in a password would be interpolated by Compose (`pa$word` -> `pa`): it is doubled."""
    values = {"DATABASE_URL": "postgres://app:pa$word@db/app", "N": 3, "ON": True, "HOST_VALUE": None, "a.b-c": "x"}
    assert compose_environment(values) == {
        "DATABASE_URL": "postgres://app:pa$$word@db/app",
        "N": "3",
        "ON": "true",
        "HOST_VALUE": None,
        "a.b-c": "x",
    }
    with pytest.raises(AnsibleFilterError, match="switchyard_stack_env: 'A=B' is not a variable name"):
        compose_environment({"A=B": "x"}, "switchyard_stack_env")
