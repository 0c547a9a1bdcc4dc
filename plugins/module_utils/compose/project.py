# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The states of one Compose project (present, stopped, started, absent, restarted, unchanged, pulled) and one-off
jobs.

Every state is planned first from what runs (containers, config hashes, digests): check mode
returns the plan; apply mode executes it and computes `changed` from the containers observed
before and after, never from the command that ran.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import time
import uuid

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.files import read_text, write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.common.masking import (
    forget_short_masks,
    hidden_params,
)
from ansible_collections.switchyard.release.plugins.module_utils.compose import plan as plans
from ansible_collections.switchyard.release.plugins.module_utils.compose.cli import ComposeCLI
from ansible_collections.switchyard.release.plugins.module_utils.compose.health import wait_until_healthy
from ansible_collections.switchyard.release.plugins.module_utils.compose.pinning import (
    desired_references,
    pin_references,
    render_override,
)
from ansible_collections.switchyard.release.plugins.module_utils.compose.registry import (
    DOCKER_SDK_IMPORT_ERROR,
    HAS_DOCKER_SDK,
    RegistryDigestResolver,
)
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import Lease

PROJECT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# An environment variable name as Compose reads it in a service's environment.
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def override_path(params):
    """Next to the project files: <dir of the first file>/.<project>.switchyard.override.yml."""
    base = params["project_dir"] or os.path.dirname(os.path.abspath(params["files"][0]))
    return os.path.join(base, f".{params['project']}.switchyard.override.yml")


def validate_static(params):
    """Checks that need nothing but the parameters; they run before anything is read or changed."""
    if not PROJECT_NAME_RE.match(params["project"]):
        raise InvalidParameters(
            f"project={params['project']!r} is not a Compose project name: lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    if params["state"] in ("present", "restarted") or params["run"]:
        if not params["files"]:
            raise InvalidParameters(f"files is required with state={params['state']} and with run")
    if params["state"] == "pulled":
        if params["run"]:
            raise InvalidParameters(
                "state=pulled only pulls the project's images: run is not used with it (state=unchanged runs a job)"
            )
        if not params["images"] and not params["files"]:
            raise InvalidParameters("state=pulled needs images, or files to read the services' images from")
    if params["state"] == "unchanged":
        if not params["run"]:
            raise InvalidParameters("state=unchanged only runs the job of run: give run (service, command ...)")
        if params["images"]:
            raise InvalidParameters(
                "images is not used with state=unchanged (nothing of the project is deployed): give the job's image "
                "as run.image"
            )
    if (params.get("staged_dir") or params.get("stop_first")) and params["state"] != "present":
        raise InvalidParameters(
            f"staged_dir and stop_first are for state=present (a color recreated in place), not state={params['state']}"
        )
    for path in params["files"] + params["env_files"]:
        # A file the staging brings is put in place before anything reads it.
        if not os.path.isfile(path) and not os.path.isfile(staged_copy(params, path)):
            raise InvalidParameters(f"files/env_files: {path} does not exist on the target")
    if params["wait_timeout"] <= 0:
        raise InvalidParameters(f"wait_timeout must be a positive number of seconds, got {params['wait_timeout']}")
    job = params["run"]
    if job:
        if job.get("timeout") is not None and job["timeout"] <= 0:
            raise InvalidParameters(f"run.timeout must be a positive number of seconds, got {job['timeout']}")
        if params["state"] in ("stopped", "absent"):
            raise InvalidParameters(
                f"run needs the project's networks and dependencies: not with state={params['state']}"
            )
        for option in ("environment", "public_environment"):
            bad = sorted(str(k) for k in job.get(option) or {} if not ENV_NAME_RE.match(str(k)))
            if bad:
                raise InvalidParameters(
                    f"run.{option}: {', '.join(map(repr, bad))} is not a variable name - a letter or '_', then "
                    "letters, digits, '_', '.' or '-'"
                )
        both = sorted(set(map(str, job.get("environment") or {})) & set(map(str, job.get("public_environment") or {})))
        if both:
            raise InvalidParameters(
                f"run.environment and run.public_environment both set {', '.join(both)}: give each variable once"
            )


def staged_copy(params, path):
    """Where the staging laid out the next version of path (staged_dir/<its name>), or "" without staged_dir."""
    return os.path.join(params["staged_dir"], os.path.basename(path)) if params.get("staged_dir") else ""


def missing_staged(params):
    """Refuse, before anything changes, a staged_dir without every file of files and env_files."""
    missing = [staged_copy(params, p) for p in params["files"] + params["env_files"]]
    missing = [path for path in missing if not os.path.isfile(path)]
    if missing:
        raise InvalidParameters(
            f"staged_dir: {', '.join(missing)} missing - the staging lays out every file of files and env_files "
            "there; nothing was changed"
        )


def put_in_place(pairs):
    """Move each staged file over its counterpart - one rename(2) each, so a reader sees the old file or the new one,
    never half of one. Returns the paths whose content changed."""
    changed = []
    for staged, path in pairs:
        differs = read_bytes(staged) != read_bytes(path)
        try:
            os.replace(staged, path)
        except OSError as exc:
            raise SwitchyardError(
                f"cannot put {staged} in place of {path}: {exc.strerror or exc} (staged_dir must be on the same "
                "filesystem as the project's files)",
                staged=changed,
            ) from exc
        if differs:
            changed.append(path)
    return changed


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def cli_for(module):
    params = module.params
    environ = {"DOCKER_HOST": params["docker_host"]} if params["docker_host"] else {}
    return ComposeCLI(
        CommandRunner(module, environ),
        params["docker_cli"],
        params["project"],
        params["files"],
        params["project_dir"],
        params["env_files"],
        params["profiles"],
    )


class ComposeProjectManager:
    def __init__(self, module, cli=None, resolver=None):
        self.module = module
        self.params = module.params
        self.cli = cli or cli_for(module)
        self.resolver = resolver or RegistryDigestResolver(self.params["docker_host"])
        self.result = {
            "changed": False,
            "project": self.params["project"],
            "actions": plans.empty_actions(),
            # run.environment is no_log: hidden in the echoed arguments whatever the length of its values,
            # and masked in the rest of the result when long enough not to garble it (common/masking.py).
            "invocation": {"module_args": hidden_params(module.argument_spec, module.params)},
        }
        forget_short_masks(module)
        self.lease = Lease(self.params.get("lease"), module.check_mode, warn=module.warn)
        self.stopped_first = False
        if self.params.get("stop_first") and not module.check_mode:
            # A recreate: until its stop, its file moves or its `up` begin, a failure leaves the old version running.
            self.result["touched"] = False

    # -- entry point ---------------------------------------------------------------------------
    def run(self):
        validate_static(self.params)
        self.require_sdk()
        with self.lease.kept():  # nothing changes under another run's release lock
            state = self.params["state"]
            before = self.cli.containers()
            getattr(self, f"state_{state}")(before)
            if self.params["run"]:
                self.run_job()
                job = self.result["job"]
                if not job.get("skipped") and job["rc"] != 0:
                    why = "timed out" if job["timed_out"] else f"exited with {job['rc']}"
                    # cmd/rc/stdout/stderr beside the message, as every failed command reports them
                    raise SwitchyardError(
                        f"job {job['service']} {why}",
                        cmd=job["cmd"],
                        rc=job["rc"],
                        stdout=job["stdout"],
                        stderr=job["stderr"],
                    )
        return self.result

    def require_sdk(self):
        """Tags are resolved through the Docker SDK: without it, only digests can be deployed."""
        if self.params["resolve_digests"] and not HAS_DOCKER_SDK:
            if any("@" not in str(ref) for ref in self.params["images"].values()):
                raise SwitchyardError(
                    missing_required_lib("docker (the Docker SDK for Python)"), exception=DOCKER_SDK_IMPORT_ERROR
                )

    # -- states --------------------------------------------------------------------------------
    def pinned_images(self, config):
        """Service -> digest-pinned reference the project would run: O(images) over the files' own images."""
        params = self.params
        services = sorted(config.get("services", {}))
        unknown = sorted(set(params["images"]) - set(services))
        if unknown:
            raise InvalidParameters(
                f"images: unknown service(s) {', '.join(unknown)}; the project has: {', '.join(services)}"
            )
        unlisted = sorted(set(services) - set(params["images"]))
        if params["images_only"] and unlisted:
            # The images given are the ones verified: a service would otherwise run what its file says, unverified.
            raise InvalidParameters(
                f"images_only: service(s) {', '.join(unlisted)} of the project are not in images (which has "
                f"{', '.join(sorted(params['images'])) or 'none'}); list every service's image, nothing was changed"
            )
        pinned = pin_references(
            desired_references(config, params["images"]),
            self.resolver,
            params["resolve_digests"],
            params["require_digest"],
        )
        self.result["images"] = pinned
        return pinned

    def state_present(self, before):
        self.apply_present(self.prepare_present(before))

    def prepare_present(self, before):
        """What state=present does before it changes anything: the project rendered, its images pinned and pulled.
        A failure here leaves the project as it was (a recreate does this before its maintenance page goes on)."""
        params = self.params
        recreate = not self.module.check_mode and (params["stop_first"] or params["staged_dir"])
        # With staged files, rendered from them (relative paths against the project's own directory), so that the
        # images are pinned and pulled before anything stops or moves.
        if recreate and params["staged_dir"]:
            missing_staged(params)
        config = self.staged_cli().config() if recreate and params["staged_dir"] else self.cli.config()
        pinned = self.pinned_images(config)
        if not self.module.check_mode:
            self.ensure_images(pinned)
        prepared = {"before": before, "services": sorted(config.get("services", {})), "pinned": pinned}
        if recreate and params["staged_dir"]:
            # The hashes the staged project will have, with its pins rendered in the module's tmpdir: computed now,
            # not after the stop (a recreate prepares before its maintenance page goes on).
            pins = os.path.join(self.module.tmpdir, os.path.basename(override_path(params)))
            write_atomically(pins, render_override(pinned, params["labels"]))
            prepared["desired"] = self.staged_cli().config_hashes(extra_files=[pins])
        return prepared

    def apply_present(self, prepared):
        """The rest of state=present: (a recreate's stop and staged files), the pins written, `up`, the wait."""
        params = self.params
        before, services, pinned = prepared["before"], prepared["services"], prepared["pinned"]
        running = before  # what ran when the module began: the diff and `changed` compare with it
        recreate = not self.module.check_mode and (params["stop_first"] or params["staged_dir"])
        staged_changes = []
        if recreate:
            before, staged_changes = self.recreate_first(before)
        path = override_path(params)
        text = render_override(pinned, params["labels"])
        current_text = read_text(path)
        override_changes = current_text != text
        self.result["override_file"] = path

        if self.module.check_mode and override_changes:
            # Check mode writes nothing next to the project: render with a copy in the module's tmpdir.
            rendered_with = os.path.join(self.module.tmpdir, os.path.basename(path))
            write_atomically(rendered_with, text)
        else:
            if override_changes:
                try:
                    write_atomically(path, text)
                except OSError as exc:
                    raise SwitchyardError(
                        f"cannot write the pinning override {path}: {exc.strerror or exc}; nothing was started - "
                        "free the space or fix the permissions of that directory and run again",
                        override_file=path,
                    ) from exc
            rendered_with = path
        desired = prepared.get("desired") or self.cli.config_hashes(extra_files=[rendered_with])
        actions = plans.plan_present(desired, before, params["remove_orphans"])
        self.result["actions"] = actions
        self.result["diff"] = self.diff(running, desired_state(desired, pinned))
        if self.module.check_mode:
            # Planned with the files as they are: the staged ones are put in place only in apply mode.
            if params["staged_dir"]:
                found = [p for p in params["files"] + params["env_files"] if os.path.isfile(staged_copy(params, p))]
                self.result["staged"] = found
            if params["stop_first"]:
                stopping = plans.plan_stopped(before)["stopped"]
                actions["stopped"] = sorted(set(actions["stopped"]) | set(stopping))
            self.result["changed"] = plans.has_changes(actions) or override_changes
            self.result["services"] = before
            return

        if plans.has_changes(actions):
            args = ["up", "--detach", "--pull", "never", "--quiet-pull"]
            if params["remove_orphans"]:
                args.append("--remove-orphans")
            self.lease.check()  # still this run's lock, right before the change
            if "touched" in self.result:
                self.result["touched"] = True
            started = time.monotonic()
            self.cli.run(*args, extra_files=[path], what=f"starting project {params['project']}")
            after = self.after(services, before, started)
        else:
            after = self.after(services, before)
        self.result["changed"] = (
            plans.observed_change(running, after) or override_changes or bool(staged_changes) or self.stopped_first
        )

    def staged_cli(self):
        """The project as the staged files describe it, in the project's own directory."""
        params = self.params
        return ComposeCLI(
            self.cli.runner,
            self.cli.docker,
            params["project"],
            [staged_copy(params, f) for f in params["files"]],
            params["project_dir"] or os.path.dirname(os.path.abspath(params["files"][0])),
            [staged_copy(params, f) for f in params["env_files"]],
            params["profiles"],
        )

    def recreate_first(self, before):
        """stop_first, then staged_dir (apply mode, images already there): the running containers stopped - the old
        and the new version never run together - then the staged files put in place. Returns the containers now, and
        the files whose content changed."""
        params = self.params
        if params["staged_dir"]:
            missing_staged(params)  # again, right before the stop: the old version stays untouched without them
        if params["stop_first"] and plans.plan_stopped(before)["stopped"]:
            self.lease.check()  # still this run's lock, right before the change
            self.result["touched"] = True
            started = time.monotonic()
            what = f"stopping project {params['project']}"
            self.cli.run("stop", "--timeout", str(params["stop_timeout"]), what=what, files=False)
            self.result["stopped_s"] = round(time.monotonic() - started, 3)
            self.stopped_first = self.result["changed"] = True
            before = plans.after_stop(before)  # what `compose stop` leaves, without listing them again
        changed = []
        if params["staged_dir"]:
            self.lease.check()
            self.result["touched"] = True
            moving = params["files"] + params["env_files"]
            changed = put_in_place([(staged_copy(params, p), p) for p in moving])
            self.result["staged"] = moving
            self.result["changed"] = self.result["changed"] or bool(changed)
        return before, changed

    def state_pulled(self, before):
        """The images the project would run, pinned by digest and pulled per O(pull) - nothing else: no container
        is created, started, stopped or removed (a recreate pulls the new version's before its outage begins)."""
        config = self.cli.config() if self.params["files"] else {"services": dict.fromkeys(self.params["images"], {})}
        pinned = self.pinned_images(config)
        self.result["services"] = before
        if self.module.check_mode:
            missing, to_pull = self.images_to_pull(pinned)
            self.result["pulled"] = to_pull
        else:
            missing = self.ensure_images(pinned)
        # Changed when an image the host did not have is there now (a pull of what it has changes nothing).
        self.result["changed"] = bool(missing)

    def settled(self, before, actions):
        """Record the plan; True when there is nothing more to do (check mode, or nothing would change)."""
        self.result["actions"] = actions
        if self.module.check_mode or not plans.has_changes(actions):
            self.result["changed"] = plans.has_changes(actions)
            self.result["services"] = before
            return True
        return False

    def state_stopped(self, before):
        if self.settled(before, plans.plan_stopped(before)):
            return
        self.lease.check()  # still this run's lock, right before the change
        self.cli.run(
            "stop",
            "--timeout",
            str(self.params["stop_timeout"]),
            what=f"stopping project {self.params['project']}",
            files=False,
        )
        after = self.cli.containers()
        self.result["services"] = after
        self.result["changed"] = plans.observed_change(before, after)

    def state_started(self, before):
        """Start the project's existing containers again (a stopped color, for a rollback) and wait until
        they are healthy. Nothing is created: without containers the project cannot be started."""
        if not before:
            raise SwitchyardError(
                f"state=started: project {self.params['project']} has no containers (it was removed, or never "
                "deployed on this host); there is nothing to start - deploy it with state=present"
            )
        wrong = plans.images_not_matching(before, self.params["images"])
        if wrong:
            raise SwitchyardError(
                f"state=started: project {self.params['project']} does not run the images given (the digests "
                f"recorded for it): {'; '.join(wrong)}; nothing was started - the containers were replaced since; "
                "release the version wanted (state=present) rather than start what nobody verified"
            )
        if self.settled(before, plans.plan_started(before)):
            return
        self.lease.check()  # still this run's lock, right before the change
        started = time.monotonic()
        self.cli.run("start", what=f"starting project {self.params['project']}", files=False)
        self.after(sorted({c["service"] for c in before}), before, started)

    def state_absent(self, before):
        networks = self.cli.networks_of_project()
        volumes = self.cli.volumes_of_project() if self.params["remove_volumes"] else []
        actions = plans.plan_absent(before)
        self.result["actions"] = actions
        self.result["networks_removed"] = networks
        self.result["volumes_removed"] = volumes
        would_change = plans.has_changes(actions) or bool(networks) or bool(volumes)
        if self.module.check_mode or not would_change:
            self.result["changed"] = would_change
            self.result["services"] = before
            return
        args = ["down", "--timeout", str(self.params["stop_timeout"])]
        if self.params["remove_volumes"]:
            args.append("--volumes")
        if self.params["remove_orphans"]:
            args.append("--remove-orphans")
        self.lease.check()  # still this run's lock, right before the change
        self.cli.run(*args, what=f"removing project {self.params['project']}", files=False)
        after = self.cli.containers()
        self.result["services"] = after
        self.result["changed"] = (
            plans.observed_change(before, after)
            or networks != self.cli.networks_of_project()
            or (bool(volumes) and volumes != self.cli.volumes_of_project())
        )

    def state_unchanged(self, before):
        """Only the job: the project's containers are neither created, started, stopped nor removed
        (a migration job of a color before that color is deployed)."""
        self.result["services"] = before

    def state_restarted(self, before):
        if not before:
            raise InvalidParameters(
                f"state=restarted: project {self.params['project']} has no containers; use state=present"
            )
        self.result["actions"] = plans.plan_restarted(before)
        self.result["changed"] = True
        if self.module.check_mode:
            self.result["services"] = before
            return
        self.lease.check()  # still this run's lock, right before the change
        started = time.monotonic()
        self.cli.run(
            "restart",
            "--timeout",
            str(self.params["stop_timeout"]),
            what=f"restarting project {self.params['project']}",
            files=False,
        )
        self.after(sorted({c["service"] for c in before}), before, started)

    # -- helpers -------------------------------------------------------------------------------
    def images_to_pull(self, pinned):
        """(missing, to_pull): the references not on the host, and the ones O(pull) pulls; pull=never with a
        missing image is refused."""
        policy = self.params["pull"]
        refs = sorted(set(pinned.values()))
        missing = [r for r in refs if not self.cli.image_present(r)]
        if policy == "never" and missing:
            raise InvalidParameters(f"pull=never but image(s) are not on the host: {', '.join(missing)}")
        return missing, refs if policy == "always" else missing

    def ensure_images(self, pinned):
        """Pull per policy before anything changes, so a failed pull leaves the project as it was; the references
        that were missing."""
        missing, to_pull = self.images_to_pull(pinned)
        for ref in to_pull:
            self.cli.runner.run([self.cli.docker, "pull", "--quiet", ref], f"pulling {ref}")
        pulled = self.result.get("pulled", [])  # the job's image adds to the project's
        self.result["pulled"] = pulled + [r for r in to_pull if r not in pulled]
        return missing

    def after(self, services, before, started=None):
        """The containers once ready; on failure the result still says what changed. With started (the monotonic
        time the start command began), ready_s: how long the services took from that command to ready."""
        ready = None
        try:
            if self.params["wait"]:
                ready = wait_until_healthy(self.cli, services, self.params["wait_timeout"])
                if started is not None:
                    self.result["ready_s"] = round(time.monotonic() - started, 3)
        finally:
            # The wait's last listing when it succeeded (no second listing inside a recreate's outage).
            after = self.cli.containers() if ready is None else ready
            self.result["services"] = after
            self.result["changed"] = self.result["changed"] or plans.observed_change(before, after)
        return after

    def diff(self, before, desired):
        def observed(containers):
            return {
                c["service"]: {"image": c["image"], "config_hash": c["config_hash"], "state": c["state"]}
                for c in containers
            }

        return {"before": observed(before), "after": desired}

    def run_job(self):
        job = self.params["run"]
        command = job.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        name = f"{self.params['project']}-job-{job['service']}-{uuid.uuid4().hex[:8]}"
        environment = job.get("environment") or {}
        public = {str(k): str(v) for k, v in (job.get("public_environment") or {}).items()}
        args = ["run", "--rm", "--no-TTY", "--name", name]
        if self.params["state"] == "unchanged":
            args.append("--no-deps")  # nothing of the project starts: only the job's own container
        args += [job["service"]] + [str(c) for c in command or []]
        extra = [override_path(self.params)] if os.path.exists(override_path(self.params)) else []
        image = self.job_image(job)
        self.result["changed"] = True
        described = {
            "service": job["service"],
            "command": command,
            "image": image,
            "environment": sorted(environment),
            "public_environment": public,
        }
        if self.module.check_mode:
            self.result["job"] = {**described, "skipped": True, "cmd": self.cli.compose(*args, extra_files=extra)}
            return
        if image:
            self.ensure_images({job["service"]: image})
        if not environment and not public and not image:
            self.execute_job(described, name, self.cli.compose(*args, extra_files=extra))
            return
        private = tempfile.mkdtemp(prefix="switchyard-job-", dir=self.module.tmpdir)  # 0700
        try:
            extra.append(write_job_override(private, job["service"], {**public, **environment}, image))
            self.execute_job(described, name, self.cli.compose(*args, extra_files=extra))
        finally:  # a failed or timed-out job too
            shutil.rmtree(private, ignore_errors=True)

    def job_image(self, job):
        """run.image pinned by digest as the images option is (resolved, or refused as a tag), or None."""
        if not job.get("image"):
            return None
        pinned = pin_references(
            {job["service"]: job["image"]},
            self.resolver,
            self.params["resolve_digests"],
            self.params["require_digest"],
        )
        return pinned[job["service"]]

    def execute_job(self, described, name, cmd):
        timeout = self.params["run"].get("timeout")
        if timeout:
            cmd = ["timeout", "--signal=TERM", "--kill-after=10", str(timeout)] + cmd
        started = time.monotonic()
        self.lease.check()
        rc, out, err = self.cli.runner.run(cmd, f"job {described['service']}", check=False)
        duration = round(time.monotonic() - started, 3)
        timed_out = job_timed_out(timeout, rc, duration)
        if timed_out:
            self.cli.runner.run([self.cli.docker, "rm", "--force", name], "removing the timed-out job", check=False)
        self.result["job"] = {
            **described,
            "rc": rc,
            "stdout": out,
            "stderr": err,
            "duration": duration,
            "timed_out": timed_out,
            "cmd": cmd,
        }


def job_timed_out(timeout, rc, duration):
    """timeout(1) exits 124 once it sent TERM; 137 (128 + KILL) when the job ignored TERM for --kill-after
    seconds - a job's own 137 (killed for memory) before the timeout is not one."""
    if not timeout:
        return False
    return rc == 124 or (rc == 137 and duration >= timeout)


def write_job_override(directory, service, environment, image=None):
    """The job's image and environment as a Compose file layered last, written 0600 in a private directory:
    the values never reach a command line (`ps` shows every process's arguments), and they override the
    service's own environment as `run --env` would, without changing the project's interpolation.
    `$` is doubled, or Compose would interpolate it; JSON is YAML, and quotes everything else."""
    path = os.path.join(directory, "job.environment.yml")
    definition = {}
    if image:
        definition["image"] = image
    if environment:
        definition["environment"] = {str(k): str(v).replace("$", "$$") for k, v in environment.items()}
    doc = {"services": {service: definition}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return path


def desired_state(desired_hashes, pinned):
    return {
        s: {"image": pinned.get(s), "config_hash": h, "state": "running"} for s, h in sorted(desired_hashes.items())
    }
