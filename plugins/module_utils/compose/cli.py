# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The docker CLI with the Compose v2 plugin, for one project: argument lists, never a shell."""

from __future__ import annotations

import json

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandError
from ansible_collections.switchyard.release.plugins.module_utils.compose.parsers import (
    PROJECT_LABEL,
    parse_config_hashes,
    summarize_container,
)


class ComposeCLI:
    """`docker compose -p PROJECT -f FILE...` and the container queries around it."""

    def __init__(self, runner, docker, project, files=(), project_dir=None, env_files=(), profiles=()):
        self.runner = runner
        self.docker = docker
        self.project = project
        self.files = list(files)
        self.project_dir = project_dir
        self.env_files = list(env_files)
        self.profiles = list(profiles)

    def compose(self, *args, extra_files=(), files=True):
        """The command line; files=False addresses the project by name alone (stop, down, restart
        work from the containers' labels, even when the files are gone)."""
        cmd = [self.docker, "compose", "--project-name", self.project]
        if files:
            if self.project_dir:
                cmd += ["--project-directory", self.project_dir]
            for path in self.files + list(extra_files):
                cmd += ["--file", path]
            for path in self.env_files:
                cmd += ["--env-file", path]
        for profile in self.profiles:
            cmd += ["--profile", profile]
        return cmd + list(args)

    def config(self, extra_files=()):
        """The rendered project (interpolated, merged), as Compose will run it."""
        return self.runner.parsed(
            self.compose("config", "--format", "json", extra_files=extra_files),
            "rendering the Compose project",
            json.loads,
        )

    def config_hashes(self, extra_files=()):
        """Per service, the config hash Compose will put on its containers."""
        return self.runner.parsed(
            self.compose("config", "--hash", "*", extra_files=extra_files),
            "computing the services' config hashes",
            parse_config_hashes,
        )

    def containers(self, include_oneoff=False):
        """The project's containers, running or not, summarised (from docker inspect)."""
        _rc, out, _err = self.runner.run(
            [
                self.docker,
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                f"label={PROJECT_LABEL}={self.project}",
                "--format",
                "{{.ID}}",
            ],
            f"listing the containers of project {self.project}",
        )
        ids = out.split()
        if not ids:
            return []
        inspected = self.inspect(ids)
        found = [summarize_container(obj) for obj in inspected]
        if not include_oneoff:
            found = [c for c in found if not c["oneoff"]]
        return sorted(found, key=lambda c: (c["service"] or "", c["number"]))

    def inspect(self, ids):
        rc, out, err = self.runner.run([self.docker, "inspect", *ids], "inspecting containers", check=False)
        if rc != 0 and "No such" not in err:
            raise CommandError(
                f"inspecting containers failed (rc={rc}): {err.strip()}", [self.docker, "inspect", *ids], rc, out, err
            )
        try:
            return json.loads(out or "[]")
        except ValueError as exc:
            raise CommandError(
                f"inspecting containers: cannot read the output ({exc})", [self.docker, "inspect", *ids], rc, out, err
            ) from exc

    def logs_tail(self, container_id, lines=30):
        _rc, out, err = self.runner.run(
            [self.docker, "logs", "--tail", str(lines), container_id], "reading container logs", check=False
        )
        return (out + err).strip().splitlines()[-lines:]

    def image_present(self, reference):
        rc, _out, _err = self.runner.run(
            [self.docker, "image", "inspect", "--format", "{{.Id}}", reference], "inspecting an image", check=False
        )
        return rc == 0

    def networks_of_project(self):
        return self._labelled("network")

    def volumes_of_project(self):
        return self._labelled("volume")

    def _labelled(self, kind):
        _rc, out, _err = self.runner.run(
            [self.docker, kind, "ls", "--filter", f"label={PROJECT_LABEL}={self.project}", "--format", "{{.Name}}"],
            f"listing the {kind}s of project {self.project}",
        )
        return sorted(out.split())

    def run(self, *args, extra_files=(), what="docker compose", files=True):
        return self.runner.run(self.compose(*args, extra_files=extra_files, files=files), what)
