# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one shape of every module's main(): build the manager, run it, exit with its result.

A SwitchyardError fails the task with its message and fields, on top of what the manager had
gathered so far (what changed before the failure stays visible); an OSError (a full disk, a
permission) with what and where; anything else is a bug, and fails with its traceback attached.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError


def run_module(module, make_manager):
    """make_manager(module) -> an object with run() -> result and, optionally, partial_result()."""
    manager = None
    try:
        manager = make_manager(module)
        result = manager.run()
    except SwitchyardError as exc:
        module.fail_json(**{**partial_result(manager), **exc.result()})
    except OSError as exc:  # the host's trouble (a full disk, permissions), not a bug: say what and where
        where = f" ({exc.filename})" if exc.filename else ""
        module.fail_json(
            msg=f"{exc.strerror or exc}{where}; what changed before it is in the result - fix it and run again",
            errno=exc.errno,
            exception=traceback.format_exc(),
            **partial_result(manager),
        )
    except Exception as exc:  # a bug: say so, with the traceback
        module.fail_json(
            msg=f"unexpected {type(exc).__name__}: {exc}",
            exception=traceback.format_exc(),
            **partial_result(manager),
        )
    module.exit_json(**result)


def partial_result(manager):
    if manager is None:
        return {}
    partial = getattr(manager, "partial_result", None)
    if partial is not None:
        return partial()
    return dict(getattr(manager, "result", None) or {})


class ModuleView:
    """The module with another set of parameters, for one module that runs another module's manager on part of its
    options (the recreate module runs compose_project's and traffic's). Everything but the parameters - check mode,
    diff mode, warnings, run_command, the temporary directory, no_log masking - is the running module's own.

    The parameters are validated against that module's argument spec and given its defaults, as the module itself
    would have them; a bad value fails naming the option."""

    def __init__(self, module, argument_spec, params, prefix=""):
        validated = ArgumentSpecValidator(argument_spec).validate(params)
        if validated.error_messages:
            where = f"{prefix}: " if prefix else ""
            raise InvalidParameters(where + "; ".join(validated.error_messages))
        self._module = module
        self.argument_spec = argument_spec
        self.params = validated.validated_parameters
        # A no_log value of the other module's options is masked in this module's output as in its own.
        no_log_values = getattr(module, "no_log_values", None)
        if no_log_values is not None:
            no_log_values.update(validated._no_log_values)

    def __getattr__(self, name):
        return getattr(self._module, name)
