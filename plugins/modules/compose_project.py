#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_project
short_description: One Docker Compose project, pinned by digest, healthy or a clear failure
version_added: 0.1.0
description:
  - Brings one Compose v2 project (for example C(shop-green)) to a state on the target host, driving
    the C(docker) CLI with the Compose plugin, and the Docker Engine API to resolve image digests.
  - Every service runs a digest-pinned image written to a generated override file layered after the
    project files (C(.<project>.switchyard.override.yml) next to the first file), so the running stack
    uses exactly the images given.
  - The plan (what would be created, recreated, started, stopped or removed) comes from the config
    hashes Compose puts on containers (C(docker compose config --hash)) compared with what runs; check
    mode returns that plan and changes nothing (it never uses C(up --dry-run)). C(changed) is computed
    from the containers observed before and after.
  - Waiting is done by the module, not by C(up --wait) - every service with a healthcheck must be
    healthy and the others running; an exited, crash-looping or unhealthy container fails at once with
    its last healthcheck outputs and the tail of its logs. Other projects (the other color) are never
    touched.
author:
  - Switchyard developers (@switchyard)
requirements:
  - Docker Engine with the Compose v2 plugin (C(docker compose)) on the target.
  - The Docker SDK for Python (C(docker) >= 7) on the target when O(resolve_digests=true) meets a tag.
extends_documentation_fragment:
  - switchyard.release.compose
  - switchyard.release.lease
attributes:
  check_mode:
    description: Reads everything, plans, changes nothing, and says what would change.
    support: full
  diff_mode:
    description: Per service, image, config hash and state before and after.
    support: full
options:
  state:
    description:
      - V(present) - up, detached, with pinned images, waiting until healthy when O(wait).
      - V(stopped) - containers stopped, kept.
      - V(started) - the project's existing containers started again (a color stopped by hand or by an interrupted
        contract), waiting until healthy when O(wait); nothing is created or recreated, and a project without
        containers is an error. Needs no files.
      - V(absent) - down; named volumes are kept unless O(remove_volumes).
      - V(restarted) - restart every container of the project (always a change).
      - V(unchanged) - only the job of O(run); nothing of the project is created, started, stopped or removed, and the
        job starts none of its dependencies (C(run --no-deps)). A migration job of a color before that color is
        deployed runs so, with the image of the version being released given as O(run.image).
      - V(pulled) - only the images the project would run (O(images) over the images of O(files), pinned by digest)
        pulled per O(pull); nothing of the project is created, started, stopped or removed. A recreate pulls the new
        version's images so before its outage. Needs O(images) or O(files); O(run) is not used with it.
    type: str
    choices: [present, stopped, started, absent, restarted, unchanged, pulled]
    default: present
  images:
    description:
      - Service name to image reference (tag or digest). Services not listed keep the image of the files.
      - With O(state=started), the digests the existing containers must run (a rollback passes the ones the ledger
        recorded). A container of another digest is refused before anything starts. A service given by tag, or
        without a container (scaled to 0), is not compared.
    type: dict
    default: {}
  images_only:
    description:
      - With O(state=present), refuse (before anything changes) a service of the project that O(images) does not list,
        naming it - so that every image that runs is one the caller chose (and verified), never the one a file names.
    type: bool
    default: false
  pull:
    description:
      - V(missing) pulls the pinned images that are not on the host, V(always) pulls them all,
        V(never) fails when one is missing. Pulls happen before anything changes.
    type: str
    choices: [missing, always, never]
    default: missing
  wait:
    description: Return only when every service with a healthcheck is healthy and the others run.
    type: bool
    default: true
  stop_first:
    description:
      - With O(state=present), stop the project's running containers first (C(docker compose stop), within
        O(stop_timeout)), then create the new ones - the old and the new version never run together (a color
        recreated in place). The images are pinned and pulled before the stop; RV(stopped_s) says how long the stop
        took and RV(ready_s) counts from C(up), not from the stop.
    type: bool
    default: false
  staged_dir:
    description:
      - With O(state=present), a directory where the next version of every file of O(files) and O(env_files) was laid
        out beforehand, by name (a recreate stages there while the old version still runs), on the same filesystem.
      - The project is rendered from the staged files (relative paths against the project's own directory), its
        images pinned and pulled; then, after O(stop_first)'s stop, each staged file is moved over its counterpart
        - one rename each, so each is replaced whole - and the project is brought up from them. A staged file
        missing is refused before anything changes.
      - In check mode nothing is moved and the files as they are are planned; RV(staged) lists the staged files found.
    type: path
  remove_orphans:
    description: Remove containers of services no longer in the files.
    type: bool
    default: false
  remove_volumes:
    description: With O(state=absent), also remove the project's named volumes.
    type: bool
    default: false
  run:
    description:
      - A one-off job, C(docker compose run --rm), after the state is reached (migrate, backfill).
      - A non-zero exit code fails the task, with the job's cmd, rc, stdout and stderr (in the result and in RV(job)).
    type: dict
    suboptions:
      service:
        description: The service whose definition the job uses.
        type: str
        required: true
      command:
        description: The command, as a list or a string split like a shell would.
        type: raw
      image:
        description:
          - The image the job's service runs, pinned by digest like O(images) (a tag is resolved when
            O(resolve_digests), refused when O(require_digest)), pulled per O(pull). Written to the job's own
            Compose file layered last, so it wins over the project's files and pins.
          - Omitted, the job runs the image the project's files and pins give its service.
        type: str
      public_environment:
        description:
          - Environment variables of the job that are not secrets (a migration phase, a release id), passed like
            O(run.environment) (never on a command line) but shown in the result as they are and never masked.
          - A variable is given in O(run.environment) or here, not both.
        type: dict
        default: {}
      environment:
        description:
          - Extra environment variables for the job; they override the service's own, like C(run --env).
          - The values can be secrets - they never reach a command line (where C(ps) would show them) - they are
            written to a Compose file layered last, mode 0600 in a private directory, removed once the job is over
            (failed or timed out too). The option is C(no_log) - the values are hidden in the echoed arguments
            and masked wherever they appear in the result (the job's output included) when they are at least 4
            characters long (a shorter one would garble every word that contains it).
          - Names are a letter or C(_), then letters, digits, C(_), C(.) or C(-).
        type: dict
        default: {}
      timeout:
        description:
          - Seconds after which the job is stopped (TERM, then KILL 10 s later), its container removed, and the task
            fails with C(job.timed_out=true).
        type: int
notes:
  - O(files) is required with O(state=present), O(state=restarted) and O(run).
  - A job always reports a change; in check mode it is not run (C(job.skipped) and the C(cmd) it would run).
  - Fixed C(container_name) in a project collides across colors; use the project name to tell colors apart.
"""

EXAMPLES = r"""
- name: Deploy the candidate color, pinned by digest
  switchyard.release.compose_project:
    project: shop-green
    files:
      - /srv/shop/compose.base.yaml
      - /srv/shop/compose.prod.yaml
    images:
      api: registry.example.com/shop/api:2.4.1
    labels:
      io.switchyard.release: "20261126-1"
      io.switchyard.color: green
    wait_timeout: 180

- name: Run the backfill job of the candidate
  switchyard.release.compose_project:
    project: shop-green
    files: [/srv/shop/compose.base.yaml]
    run:
      service: api
      command: [python3, -m, shop.backfill]
      timeout: 600

- name: Run the migration job of the version being released, before its color is deployed
  switchyard.release.compose_project:
    project: shop-green
    files: [/srv/shop/green/compose.base.yaml]
    env_files: [/srv/shop/green/color.env]
    state: unchanged
    run:
      service: migrate
      image: registry.example.com/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      command: [alembic, upgrade, expand@head]
      public_environment:
        SWITCHYARD_MIGRATION_PHASE: expand
      timeout: 600

- name: Pull the next version's images while the current one still serves (nothing of the project changes)
  switchyard.release.compose_project:
    project: shop-blue
    files: [/srv/shop/blue.staged/compose.base.yaml]
    env_files: [/srv/shop/blue.staged/color.env]
    images:
      api: registry.example.com/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    state: pulled

- name: Recreate the color in place - stop it, put the staged files in place, start the new version
  switchyard.release.compose_project:
    project: shop-blue
    files: [/srv/shop/blue/compose.base.yaml]
    env_files: [/srv/shop/blue/color.env]
    staged_dir: /srv/shop/blue.staged
    stop_first: true
    images:
      api: registry.example.com/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

- name: Retire the old color, keeping its volumes
  switchyard.release.compose_project:
    project: shop-blue
    state: absent
"""

RETURN = r"""
project:
  description: The project name.
  returned: always
  type: str
services:
  description: The project's containers after the task (before it, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Short container id.
      type: str
    name:
      description: Container name.
      type: str
    service:
      description: Compose service.
      type: str
    state:
      description: Docker state, for example V(running) or V(exited).
      type: str
    health:
      description: Health status; null when the service has no healthcheck.
      type: str
    image:
      description: The image reference the container runs.
      type: str
    image_id:
      description: The local image id.
      type: str
    digest:
      description: The digest the reference pins; null when it is a tag.
      type: str
    config_hash:
      description: Compose's config hash of the container.
      type: str
images:
  description: Service to the digest-pinned reference used (state=present) or pulled (state=pulled).
  returned: when state is present or pulled
  type: dict
  sample: {api: "127.0.0.1:5000/switchyard/demo-app@sha256:0123..."}
actions:
  description: Services per action - created, recreated, started, stopped, removed.
  returned: always
  type: dict
override_file:
  description: The generated override file that pins the images.
  returned: when state is present
  type: str
pulled:
  description: The references pulled (with state=pulled in check mode, the ones that would be).
  returned: when state is present and not in check mode, and when state is pulled
  type: list
  elements: str
stopped_s:
  description: Seconds the stop of O(stop_first) took (C(docker compose stop) until the containers exited).
  returned: when O(stop_first) stopped containers (not in check mode)
  type: float
  sample: 0.842
touched:
  description:
    - With O(stop_first), whether the call began to change the project - its stop, the staged files moved, or C(up).
    - C(false) on a failure before that (the arguments, the staged files missing, the images not resolved or pulled,
      another run's lock) - the old version was left running as it was, and a caller may take traffic back to it.
  returned: when O(stop_first) is set (not in check mode), on success and on failure
  type: bool
  sample: true
staged:
  description: The files put in place from O(staged_dir) (in check mode, those found there).
  returned: when O(staged_dir) is given
  type: list
  elements: str
ready_s:
  description:
    - Seconds from the command that started containers (C(up), C(start), C(restart)) until every service was ready
      (O(wait)); a recreate records it as the new version's health time.
  returned: when containers were started and waited for (not in check mode)
  type: float
  sample: 3.912
networks_removed:
  description: The project's networks that state=absent removes.
  returned: when state is absent
  type: list
  elements: str
volumes_removed:
  description: The project's named volumes that state=absent removes (only with remove_volumes).
  returned: when state is absent
  type: list
  elements: str
job:
  description:
    - The one-off job - service, command, image (O(run.image) pinned, or null), the names of its extra environment
      variables (environment, never their values), public_environment, rc, stdout, stderr, duration (seconds),
      timed_out and cmd.
  returned: when run is given
  type: dict
cmd:
  description: The job's command line, when the job failed or timed out.
  returned: when the job of run failed
  type: list
  elements: str
rc:
  description: The job's exit code (124 or 137 when it timed out), when it failed.
  returned: when the job of run failed
  type: int
stdout:
  description: The job's standard output, when it failed.
  returned: when the job of run failed
  type: str
stderr:
  description: The job's standard error, when it failed.
  returned: when the job of run failed
  type: str
failures:
  description: Per failing container - service, container, state, health, health_log, logs.
  returned: when a service does not become healthy
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.compose.options import compose_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.compose.project import ComposeProjectManager

ARGUMENT_SPEC = compose_argument_spec()


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, ComposeProjectManager)


if __name__ == "__main__":
    main()
