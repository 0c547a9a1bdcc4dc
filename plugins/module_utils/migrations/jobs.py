# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Migrations run as the application's own Compose jobs (switchyard_migrations_runner: compose_job).

The roles decide nothing in Jinja: which runner, whether a release has migrations at all, the job of a
phase (service, command, the verified image it runs, its timeout, the variables that tell it the phase)
and what the ledger keeps of a job that ran (service, rc, duration - never an environment value) are
computed here, and every bad setting is refused naming the variable and what it accepts, before the
release takes its lock.
"""

from __future__ import annotations

import re

RUNNERS = ("builtin", "compose_job")
JOB_PHASES = ("expand", "migrate", "contract")
JOB_KEYS = ("service", "command", "image_from", "timeout")
# What a job is told: the phase (one image can serve every phase with one command) and the release.
PHASE_VARIABLE = "SWITCHYARD_MIGRATION_PHASE"
RELEASE_VARIABLE = "SWITCHYARD_RELEASE_ID"
# A Compose service name (compose-spec: [a-zA-Z0-9._-], not starting with a separator).
SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

RUNNER_VARIABLE = "switchyard_migrations_runner"
JOBS_VARIABLE = "switchyard_migrations_jobs"
TIMEOUT_VARIABLE = "switchyard_migrations_job_timeout"
DIR_VARIABLE = "switchyard_migrations_dir"


class MigrationJobsError(ValueError):
    """A setting of the migration runner that cannot work; the message names the variable."""


def _positive_seconds(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MigrationJobsError(f"{where}={value!r}: a positive whole number of seconds")
    try:
        seconds = int(value)
    except ValueError:
        raise MigrationJobsError(f"{where}={value!r}: a positive whole number of seconds") from None
    if seconds <= 0:
        raise MigrationJobsError(f"{where}={value!r}: a positive whole number of seconds")
    return seconds


def _command(value, where):
    """A list of words (strings or numbers) or one string (split like a shell would, by the module); None = the
    service's own command."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise MigrationJobsError(f"{where} is empty: give a list of words, or omit it for the service's command")
        return value
    if isinstance(value, (list, tuple)) and value:
        bad = [w for w in value if isinstance(w, bool) or not isinstance(w, (str, int, float))]
        if not bad:
            return [str(w) for w in value]
    raise MigrationJobsError(
        f"{where}={value!r}: a non-empty list of words (strings or numbers), or a string; omit it to run the "
        "service's own command"
    )


def _job(phase, spec, image_services, timeout):
    where = f"{JOBS_VARIABLE}.{phase}"
    if not isinstance(spec, dict):
        raise MigrationJobsError(f"{where} must be a mapping with service (and command, image_from, timeout)")
    unknown = sorted(str(k) for k in spec if k not in JOB_KEYS)
    if unknown:
        raise MigrationJobsError(f"{where}: unknown key(s) {', '.join(unknown)}; a job has {', '.join(JOB_KEYS)}")
    service = spec.get("service")
    if not isinstance(service, str) or not SERVICE_RE.match(service):
        raise MigrationJobsError(
            f"{where}.service={service!r}: the Compose service of the job (letters, digits, '.', '_', '-'; "
            "not starting with a separator)"
        )
    image_from = spec.get("image_from", service)
    if not isinstance(image_from, str) or image_from not in image_services:
        shown = ", ".join(sorted(image_services)) or "none"
        raise MigrationJobsError(
            f"{where}.image_from={image_from!r}: the job runs the verified, digest-pinned image of one service of "
            f"switchyard_images ({shown}); name it (it defaults to the job's service, {service!r})"
        )
    return {
        "service": service,
        "command": _command(spec.get("command"), f"{where}.command"),
        "image_from": image_from,
        "timeout": _positive_seconds(spec["timeout"], f"{where}.timeout") if "timeout" in spec else timeout,
    }


def migrations_runner(runner, jobs=None, images=None, timeout=600, migrations_dir=""):
    """The runner's settings checked and normalised: {runner, enabled, jobs: {phase: job}}.

    enabled says whether the release has migrations at all: the builtin runner with a directory, or the
    application's jobs. images are the services of switchyard_images (the only images a job may run).
    """
    if runner not in RUNNERS:
        raise MigrationJobsError(f"{RUNNER_VARIABLE}={runner!r}: one of {', '.join(RUNNERS)}")
    timeout = _positive_seconds(timeout, TIMEOUT_VARIABLE)
    if runner == "builtin":
        return {"runner": runner, "enabled": bool(migrations_dir), "jobs": {}}
    if migrations_dir:
        raise MigrationJobsError(
            f"{RUNNER_VARIABLE}=compose_job runs the application's own jobs, not the SQL of {DIR_VARIABLE} "
            f'({migrations_dir!r}): set {DIR_VARIABLE} to "" (or use the builtin runner)'
        )
    if not isinstance(jobs, dict) or not jobs:
        raise MigrationJobsError(
            f"{RUNNER_VARIABLE}=compose_job needs {JOBS_VARIABLE}: a mapping of phase ({', '.join(JOB_PHASES)}) to "
            "its job {service, command, image_from, timeout}"
        )
    unknown = sorted(str(k) for k in jobs if k not in JOB_PHASES)
    if unknown:
        raise MigrationJobsError(
            f"{JOBS_VARIABLE}: unknown phase(s) {', '.join(unknown)}; the phases are {', '.join(JOB_PHASES)}"
        )
    services = set(images or {})
    normalized = {phase: _job(phase, jobs[phase], services, timeout) for phase in JOB_PHASES if jobs.get(phase)}
    if not normalized:
        raise MigrationJobsError(f"{JOBS_VARIABLE} gives no job for any phase ({', '.join(JOB_PHASES)})")
    return {"runner": runner, "enabled": True, "jobs": normalized}


def migration_job(settings, phase, images, release_id=""):
    """The compose_project `run` of a phase ({} when the phase has no job): the job's service and command, the
    pinned image of its image_from service (images: service -> repo@digest, the verified ones), its timeout,
    and the variables that say the phase and the release."""
    if phase not in JOB_PHASES:
        raise MigrationJobsError(f"phase={phase!r}: a migration job runs for {', '.join(JOB_PHASES)}")
    job = (settings or {}).get("jobs", {}).get(phase)
    if not job:
        return {}
    image = (images or {}).get(job["image_from"])
    if not image:
        raise MigrationJobsError(
            f"{JOBS_VARIABLE}.{phase}.image_from={job['image_from']!r}: no pinned image of that service "
            f"(the color runs {', '.join(sorted(images or {})) or 'nothing recorded'})"
        )
    run = {
        "service": job["service"],
        "image": image,
        "timeout": job["timeout"],
        "public_environment": {PHASE_VARIABLE: phase, RELEASE_VARIABLE: str(release_id or "")},
    }
    if job["command"] is not None:
        run["command"] = job["command"]
    return run


def migration_job_record(result, phase, project=""):
    """What the ledger keeps of a phase's job from compose_project's result: service, image, rc, seconds and
    the outcome - the variables' names only, never a value, and none of the job's output."""
    job = (result or {}).get("job") or {}
    record = {
        "phase": phase,
        "project": project or (result or {}).get("project", ""),
        "service": job.get("service", ""),
        "image": job.get("image") or "",
        "variables": sorted(set(job.get("public_environment") or {}) | set(job.get("environment") or [])),
    }
    if job.get("skipped"):
        return {**record, "outcome": "planned"}
    if "rc" not in job:  # failed before the job ran (bad input, the lock, a pull)
        return {**record, "outcome": "not_run", "error": str((result or {}).get("msg", ""))[:500]}
    outcome = "timed_out" if job.get("timed_out") else "done" if job["rc"] == 0 else "failed"
    return {
        **record,
        "rc": job["rc"],
        "duration_s": job.get("duration"),
        "timed_out": bool(job.get("timed_out")),
        "outcome": outcome,
    }


def migration_job_failure(result, phase, project="", lines=5):
    """Why a phase's job failed, in one message (the play's failure and the ledger's reason): where it ran,
    its rc or timeout, its duration and the last lines of its stderr (else stdout), already masked."""
    record = migration_job_record(result, phase, project)
    where = f"the {phase} job (service {record['service'] or '?'} in project {record['project'] or '?'})"
    if record["outcome"] == "not_run":
        return f"{where} did not run: {record['error'] or 'the task failed'}"
    job = (result or {}).get("job") or {}
    tail = [line for line in (job.get("stderr") or job.get("stdout") or "").strip().splitlines() if line.strip()]
    said = " | ".join(tail[-lines:]) if tail else "no output"
    if record["outcome"] == "timed_out":
        return f"{where} timed out after {record['duration_s']} s and was stopped (rc={record['rc']}): {said}"
    return f"{where} exited with rc={record['rc']} after {record['duration_s']} s: {said}"
