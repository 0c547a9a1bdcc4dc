#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_report
short_description: The report of a release, rollback or contract - its data on the Docker host, its HTML page
version_added: 0.2.0
description:
  - O(mode=collect) runs on the Docker host. It reads the ledger entry of O(release_id) and the LB's request log
    over the release's period (and O(before) seconds before and after it), bounded by O(max_span) and
    O(max_requests), as a stream, and writes C(<path>/reports/<release_id>.json)
    (the machine-readable report) and C(<path>/reports/<release_id>.tar.gz) (the archive - the LB configuration,
    the Compose files and the rendered override, the run's summary and the ledger entry; secrets excluded). It
    needs no plotting library.
  - O(mode=render) runs on the controller (C(delegate_to localhost)). It draws the self-contained HTML page of
    O(report) - charts from matplotlib as inline SVG, no script, nothing fetched - into O(dest), and writes the
    JSON next to it.
  - O(mode=fleet) runs on the controller too, once for the hosts of a run. From the reports the hosts collected
    (O(reports)) it writes the fleet's page into O(dest) and its JSON next to it - which version each host ended on,
    each host's outcome and where it failed, the hosts that sent no report, each step on each host and the gate's
    verdict - with a link to each host's page (the controller keeps them in the same directory).
author:
  - Switchyard developers (@switchyard)
requirements:
  - matplotlib (only for O(mode=render), on the controller)
attributes:
  check_mode:
    description:
      - Collects (or renders) and writes nothing; C(changed) says whether the files would change.
      - The report's C(generated_at) is left out of the comparison, so a report made again on an unchanged
        release (and LB log) is not a change.
    support: full
  diff_mode:
    description: Not supported - a report is regenerated whole.
    support: none
options:
  mode:
    description: V(collect) on the Docker host, V(render) or V(fleet) on the controller.
    type: str
    choices: [collect, render, fleet]
    default: collect
  app:
    description: The application.
    type: str
    required: true
  path:
    description:
      - The application's state directory on the Docker host (the ledger's). Defaults to C(/var/lib/switchyard/<app>).
      - Used by O(mode=collect).
    type: path
  release_id:
    description: The release, rollback or contract to report on. Defaults to the last one of the ledger.
    type: str
  lb:
    description:
      - The load balancer whose request log gives the per-color figures and time series (as the traffic module's).
      - Without it, only what the ledger keeps (the gate's numbers) is reported.
    type: dict
    suboptions:
      kind:
        description: The LB kind.
        type: str
        choices: [haproxy, nginx, traefik]
        default: haproxy
      dir:
        description: The LB's directory on the host.
        type: path
        required: true
      container:
        description: The LB's container (its log is read with C(docker logs)).
        type: str
      timeout:
        description: Seconds to wait for the LB's control socket.
        type: float
        default: 5
  routes:
    description: The routes whose requests are reported (all together per color).
    type: list
    elements: str
    default: []
  before:
    description: Seconds before the release began whose requests make the "before" figures of the live color.
    type: float
    default: 60
  bucket:
    description: Seconds per point of the time series. Defaults to the period over 120 (at least 1).
    type: float
  max_span:
    description:
      - The most seconds of the LB's log read. A longer release (one paused for days) is read over its last
        O(max_span) seconds (with the O(before) seconds after it) and the O(before) seconds before it began;
        the figures of the steps in between come from the gate's record in the ledger.
    type: float
    default: 3600
  max_requests:
    description:
      - The most request records kept from the LB's log (about 150 bytes each); beyond it the latest are kept
        and the report's C(log.dropped) counts the others.
    type: int
    default: 200000
  archive:
    description:
      - Files to archive with the report, each name in the archive mapped to its path on the host - the Compose
        files and override.
      - With O(lb), the LB's own files are archived too, under C(lb/), as its kind names them - C(haproxy.cfg) and
        C(canary.map); C(nginx.conf) and C(routes.conf); C(traefik.yml), C(switchyard.json) and the C(dynamic/)
        files of the routes.
      - A path under a C(secrets) directory (or a dot file) is never copied. An env file (a name ending in
        C(.env)) keeps its keys and every value is masked, and so is every value of an C(environment) of a YAML
        file; anywhere, the userinfo of a URL, the value of an assignment whose name looks secret and the
        values of the files of O(secrets_dir) are masked.
      - The archive is written atomically (a temporary file renamed).
    type: dict
    default: {}
  secrets_dir:
    description: Directory of the application's secret files; their values are masked wherever they appear.
    type: path
  run:
    description: What the role knows of the Ansible run (kept in the report and the archive; secrets masked).
    type: dict
    default: {}
    suboptions:
      playbook:
        description: The playbook.
        type: str
      check_mode:
        description: Whether the run was in check mode.
        type: bool
        default: false
      user:
        description: Who ran it.
        type: str
      outcome:
        description: The run's outcome as the role saw it (promoted, rolled_back, failed, done...).
        type: str
      failed_task:
        description: The task that failed, if any.
        type: str
      failure:
        description: Its message.
        type: str
  report:
    description: The report to draw (the C(report) that O(mode=collect) returned). Required with O(mode=render).
    type: dict
  dest:
    description: The HTML file to write on the controller. Required with O(mode=render) and O(mode=fleet).
    type: path
  hosts:
    description:
      - Every host of the run, in inventory order (C(ansible_play_hosts_all)); a host without a report is named
        on the fleet's page. Used by O(mode=fleet).
    type: list
    elements: str
    default: []
  active:
    description:
      - The hosts still in the play (C(ansible_play_hosts)). A host of O(hosts) that is not in it failed or was
        unreachable. Used by O(mode=fleet); without it, a host without a report is not said to have failed.
    type: list
    elements: str
  reports:
    description: The hosts' reports of this run. Required with O(mode=fleet).
    type: list
    elements: dict
    suboptions:
      host:
        description: The host (its inventory name).
        type: str
        required: true
      report:
        description: The C(report) that O(mode=collect) returned on that host.
        type: dict
        required: true
"""

EXAMPLES = r"""
- name: Collect the report of the last release on the Docker host
  switchyard.release.release_report:
    app: shop
    path: /var/lib/switchyard/shop
    lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1}
    routes: [api]
    archive:
      lb/haproxy.cfg: /var/lib/switchyard/shop/lb/etc/haproxy.cfg
  register: collected

- name: Draw its page on the controller
  switchyard.release.release_report:
    mode: render
    app: shop
    report: "{{ collected.report }}"
    dest: "reports/shop/{{ collected.report.release.id }}.html"
  delegate_to: localhost

- name: Note each host's report for the fleet's page
  ansible.builtin.set_fact:
    fleet_entry: {host: "{{ inventory_hostname }}", report: "{{ collected.report }}"}

- name: Draw the fleet's page from every host's report
  switchyard.release.release_report:
    mode: fleet
    app: shop
    hosts: "{{ ansible_play_hosts_all }}"
    active: "{{ ansible_play_hosts }}"
    reports: >-
      {{ ansible_play_hosts_all | map('extract', hostvars) | selectattr('fleet_entry', 'defined')
         | map(attribute='fleet_entry') | list }}
    dest: reports/shop/fleet.html
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
report:
  description:
    - The report - C(log) (the span of the LB's log read - C(since), C(until), C(seconds) - C(read) and
      C(dropped) records), C(release) (id, kind, version, colors, owner, outcome, times), C(steps) (per step its window,
      weights, outcome, per-color figures - requests, errors, error_rate, p50/p95/p99_ms, throughput_rps, and the
      container figures the gate recorded - and the gate's verdict with its metrics and the C(failing) ones),
      C(series) (per color and bucket rps, error_rate, p95_ms, share_percent), C(images), C(migrations),
      C(before_after), C(failure) (outcome, step, metrics, metric_names, reason, task, message - also when the
      ledger entry still says C(running) but the run failed) and C(run).
  returned: success
  type: dict
json:
  description: The JSON file written (on the host with V(collect), on the controller with V(render)).
  returned: success
  type: str
html:
  description: The HTML file written on the controller (V(render), V(fleet)).
  returned: when O(mode=render) or O(mode=fleet)
  type: str
fleet:
  description:
    - The fleet's report (V(fleet)) - C(line) (one line, like C(status.yml)'s), C(ok), C(consistent), C(disagree),
      C(versions) (version -> hosts), C(outcomes) (outcome -> hosts), C(hosts) (per host its release id, version,
      outcome, colors, live color and version, failed step, reason, page), C(missing) (hosts without a report,
      and why) and C(steps) (per step each host's outcome and the gate's verdict).
  returned: when O(mode=fleet)
  type: dict
archive:
  description: The archive on the host, with what it includes and what it left out (and why).
  returned: when O(mode=collect)
  type: dict
  sample:
    path: /var/lib/switchyard/shop/reports/20261203T201836Z-4e70.tar.gz
    included: [lb/haproxy.cfg, ledger-entry.json, ansible-run.json]
    excluded: []
"""

import datetime
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.common.command import CommandRunner
from ansible_collections.switchyard.release.plugins.module_utils.common.errors import InvalidParameters, SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.common.files import write_atomically
from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import KINDS, load_balancer
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import LEDGER_FILE, find_release
from ansible_collections.switchyard.release.plugins.module_utils.release.store import load_ledger
from ansible_collections.switchyard.release.plugins.module_utils.report.archive import (
    archive_members,
    read_members,
    write_archive,
)
from ansible_collections.switchyard.release.plugins.module_utils.report.collect import (
    collect,
    horizon_of,
    iso,
    release_period,
)

REPORTS_DIR = "reports"


def _same(path, text):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except FileNotFoundError:
        return False


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _stamp(report):
    return {"generated_at": report.get("generated_at")} if isinstance(report, dict) else {}


def _same_report(path, report):
    """Whether the JSON file holds report, its generation time aside (the only part that changes when a
    report is made again on an unchanged release)."""
    old = _read_json(path)
    return isinstance(old, dict) and {**old, "generated_at": None} == {**report, "generated_at": None}


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _secret_values(directory):
    values = []
    if directory and os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    values.append(handle.read().strip())
            except (OSError, UnicodeDecodeError):
                continue
    return [v for v in values if len(v) >= 4]


class ReportManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False}

    def run(self):
        if self.params["mode"] == "render":
            return self.render()
        if self.params["mode"] == "fleet":
            return self.fleet()
        return self.collect()

    def collect(self):
        params = self.params
        if params["max_span"] <= 0 or params["max_requests"] <= 0:
            raise InvalidParameters(
                f"max_span and max_requests must be positive (got max_span={params['max_span']}, "
                f"max_requests={params['max_requests']})"
            )
        directory = params["path"] or f"/var/lib/switchyard/{params['app']}"
        ledger = load_ledger(os.path.join(directory, LEDGER_FILE), params["app"])
        if params["release_id"]:
            entry = find_release(ledger, params["release_id"])
            if entry is None:
                raise InvalidParameters(f"release_id={params['release_id']!r} is not in the ledger of {params['app']}")
        elif ledger["releases"]:
            entry = ledger["releases"][-1]
        else:
            raise InvalidParameters(f"the ledger of {params['app']} has no release to report on (release_id)")
        now = time.time()
        start, end = release_period(entry, now)
        horizon = max(horizon_of(entry, now, params["before"]), end)
        records = []
        warnings = []
        log = {}
        if params["lb"] and params["routes"]:
            records, log = self.read_log(entry, start, horizon, warnings)
        secret_values = _secret_values(params["secrets_dir"] or os.path.join(directory, "secrets"))
        for value in secret_values:
            self.module.no_log_values.add(value)
        run = {k: v for k, v in (params["run"] or {}).items() if v is not None}
        report = collect(
            params["app"], entry, records, now, before_s=params["before"], bucket=params["bucket"], run=run, log=log
        )
        # What the host runs now, for the fleet's page (the release entry alone does not say it after a rollback).
        live = ledger.get("live") or ""
        report["live"] = {"color": live, "version": ((ledger.get("colors") or {}).get(live) or {}).get("version", "")}
        reports = os.path.join(directory, REPORTS_DIR)
        base = os.path.join(reports, entry["id"])
        report["archive"] = base + ".tar.gz"
        text = json.dumps(report, indent=1, sort_keys=True) + "\n"
        # The LB's own files (each kind knows which make what it runs), then the caller's.
        files = {}
        if params["lb"]:
            files.update(load_balancer(params["lb"], CommandRunner(self.module)).config_files(params["routes"] or []))
        files.update(params["archive"] or {})
        members, listing = archive_members(entry["id"], files, entry, run, secret_values=secret_values)
        same_json = _same_report(base + ".json", json.loads(text))
        same_archive = read_members(base + ".tar.gz") == members
        self.result.update(report=report, json=base + ".json", changed=not (same_json and same_archive))
        self.result["archive"] = {"path": base + ".tar.gz", **listing}
        if warnings:
            self.result["warnings"] = warnings
        if self.module.check_mode:
            return self.result
        os.makedirs(reports, mode=0o700, exist_ok=True)
        if not same_json:
            write_atomically(base + ".json", text, mode=0o600)
        if not same_archive:
            write_archive(base + ".tar.gz", members)
        return self.result

    def read_log(self, entry, start, horizon, warnings):
        """The LB's records over the release, bounded: at most max_span seconds up to the horizon, plus the
        `before` seconds before the release when that is earlier; at most max_requests records."""
        params = self.params
        lb = load_balancer(params["lb"], CommandRunner(self.module))
        since = start - params["before"]
        spans = [(since, horizon)]
        if horizon - since > params["max_span"]:
            spans = [(since, start), (horizon - params["max_span"], horizon)]
        records, dropped = [], 0
        for first, last in spans:
            try:
                records.extend(lb.request_log(params["routes"], _utc(first), _utc(last + 1), params["max_requests"]))
            except SwitchyardError as exc:  # the gate's numbers are still worth a report
                warnings.append(f"the LB's request log could not be read ({exc.msg}): figures from the ledger only")
                return [], {}
            dropped += getattr(lb, "request_log_dropped", 0)
        if len(records) > params["max_requests"]:
            dropped += len(records) - params["max_requests"]
            records = records[-params["max_requests"] :]
        if dropped:
            warnings.append(f"{dropped} requests of the LB's log were left out (max_requests={params['max_requests']})")
        log = {
            "spans": [{"since": iso(a), "until": iso(b), "seconds": round(b - a, 3)} for a, b in spans],
            "read": len(records),
            "dropped": dropped,
        }
        return records, log

    def fleet(self):
        params = self.params
        if not params["reports"] or not params["dest"]:
            raise InvalidParameters("mode=fleet needs reports (each host's collected report) and dest (the HTML file)")
        from ansible_collections.switchyard.release.plugins.module_utils.report.fleet import fleet_report, render_fleet

        reports = {item["host"]: item["report"] for item in params["reports"]}
        hosts = params["hosts"] or list(reports)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        report = fleet_report(params["app"], hosts, reports, params["active"], now)
        self.result.update(fleet=report)
        return self.write_page(params["dest"], report, render_fleet)

    def write_page(self, dest, report, draw):
        """The page and its JSON, written only when they change (a report made again is not a change)."""
        json_path = os.path.splitext(dest)[0] + ".json"
        old = _read_json(json_path)
        if _same_report(json_path, report) and _same(dest, draw({**report, **_stamp(old)})):
            self.result.update(changed=False, html=dest, json=json_path)
            return self.result
        text = json.dumps(report, indent=1, sort_keys=True) + "\n"
        html = draw(report)
        changed = not (_same(dest, html) and _same(json_path, text))
        self.result.update(changed=changed, html=dest, json=json_path)
        if self.module.check_mode or not changed:
            return self.result
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        write_atomically(dest, html, mode=0o644)
        write_atomically(json_path, text, mode=0o644)
        return self.result

    def render(self):
        params = self.params
        if not params["report"] or not params["dest"]:
            raise InvalidParameters("mode=render needs report (what mode=collect returned) and dest (the HTML file)")
        try:
            from ansible_collections.switchyard.release.plugins.module_utils.report.render import render
        except ImportError as exc:
            raise SwitchyardError(
                f"mode=render needs matplotlib and jinja2 on the controller ({exc}): "
                "pip install -r requirements/controller.txt"
            ) from exc
        self.result.update(report=params["report"])
        return self.write_page(params["dest"], json.loads(json.dumps(params["report"])), render)


def main():
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["collect", "render", "fleet"], "default": "collect"},
            "app": {"type": "str", "required": True},
            "path": {"type": "path"},
            "release_id": {"type": "str"},
            "lb": {
                "type": "dict",
                "options": {
                    "kind": {"type": "str", "choices": list(KINDS), "default": "haproxy"},
                    "dir": {"type": "path", "required": True},
                    "container": {"type": "str"},
                    "timeout": {"type": "float", "default": 5},
                },
            },
            "routes": {"type": "list", "elements": "str", "default": []},
            "before": {"type": "float", "default": 60},
            "bucket": {"type": "float"},
            "max_span": {"type": "float", "default": 3600},
            "max_requests": {"type": "int", "default": 200000},
            "archive": {"type": "dict", "default": {}},
            "secrets_dir": {"type": "path"},
            "run": {
                "type": "dict",
                "default": {},
                "options": {
                    "playbook": {"type": "str"},
                    "check_mode": {"type": "bool", "default": False},
                    "user": {"type": "str"},
                    "outcome": {"type": "str"},
                    "failed_task": {"type": "str"},
                    "failure": {"type": "str"},
                },
            },
            "report": {"type": "dict"},
            "dest": {"type": "path"},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "active": {"type": "list", "elements": "str"},
            "reports": {
                "type": "list",
                "elements": "dict",
                "options": {"host": {"type": "str", "required": True}, "report": {"type": "dict", "required": True}},
            },
        },
        required_if=[("mode", "render", ("report", "dest")), ("mode", "fleet", ("reports", "dest"))],
        supports_check_mode=True,
    )
    run_module(module, ReportManager)


if __name__ == "__main__":
    main()
