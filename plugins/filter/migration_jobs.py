# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration runner's decisions for the roles (module_utils/migrations/jobs.py): migrations_runner checks
and normalises switchyard_migrations_runner and switchyard_migrations_jobs, migration_job is a phase's job as
compose_project runs it, migration_job_record what the ledger keeps of it, migration_job_failure why it failed."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.switchyard.release.plugins.module_utils.migrations import jobs


def _filter(function):
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except jobs.MigrationJobsError as exc:
            raise AnsibleFilterError(str(exc)) from None

    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


class FilterModule:
    def filters(self):
        return {
            "migrations_runner": _filter(jobs.migrations_runner),
            "migration_job": _filter(jobs.migration_job),
            "migration_job_record": _filter(jobs.migration_job_record),
            "migration_job_failure": _filter(jobs.migration_job_failure),
        }
