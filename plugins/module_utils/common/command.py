# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Commands run on the target through AnsibleModule.run_command, as argument lists.

A failed command becomes a CommandError that carries cmd, rc, stdout and stderr, and so does output
its parser does not understand: every module fails with the same evidence.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError


class CommandError(SwitchyardError):
    """A command failed, or printed what its parser rejects; fail_json(**err.result()) reports it whole."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        details = {} if cmd is None else {"cmd": cmd, "rc": rc, "stdout": stdout, "stderr": stderr}
        super().__init__(msg, **details)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class CommandRunner:
    """Runs argument lists with a fixed extra environment (DOCKER_HOST, for instance)."""

    def __init__(self, module, environ=None):
        self.module = module
        self.environ = dict(environ or {})

    def run(self, args, what, check=True, data=None):
        """Run args; on a non-zero rc with check, raise CommandError saying what failed."""
        rc, out, err = self.module.run_command(
            list(args),
            environ_update=self.environ,
            data=data,
            binary_data=data is not None,
            # An argument is passed as given: a `$` or `~` in a job command or a path is not expanded.
            expand_user_and_vars=False,
        )
        if check and rc != 0:
            raise CommandError(f"{what} failed (rc={rc}): {(err or out).strip()[-2000:]}", list(args), rc, out, err)
        return rc, out, err

    def parsed(self, args, what, parse):
        """Run args and return parse(stdout); a parse failure is a CommandError with the whole evidence."""
        rc, out, err = self.run(args, what)
        try:
            return parse(out)
        except ValueError as exc:
            raise CommandError(f"{what}: cannot read the output ({exc})", list(args), rc, out, err) from exc
