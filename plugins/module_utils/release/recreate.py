# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The recreate module: a color replaced in place behind the maintenance page, in one process.

Everything that does not touch the running containers comes before the page: the staged project rendered, its images
pinned and found on the host. Then the page on every route (checked through the LB, the stop step recorded), the old
version stopped, the staged files put in place, the new version up and healthy, and the page off once the LB sees the
color UP (checked through the LB). Three module calls in a row cost three Python starts and Ansible's handling of
each inside the outage; here the outage holds only the work itself.

The page's calls are the traffic module's, the project's compose_project's, run by their own managers on the options
of this module (validated against their own argument specs): one behaviour, whichever module a playbook calls.
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.module import ModuleView
from ansible_collections.switchyard.release.plugins.module_utils.compose.options import SHARED, compose_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.compose.project import (
    ComposeProjectManager,
    validate_static,
)
from ansible_collections.switchyard.release.plugins.module_utils.lb.traffic import Traffic, traffic_argument_spec

# Where the page is after a run (the result's `page`): never put on, on (left on - by a failure after the stop, or by
# resume=false), back off over the new version.
PAGE_OFF, PAGE_ON, PAGE_RESUMED = "off", "on", "resumed"


class Recreate:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "touched": False, "page": PAGE_OFF}
        self.compose = ComposeProjectManager(ModuleView(module, compose_argument_spec(), self.project_params()))
        self.compose.result.pop("invocation", None)
        self.on = self.off = None

    # -- the options of each part ----------------------------------------------------------------
    def project_params(self):
        params = self.params
        return {
            **{name: params[name] for name in SHARED},
            "images": params["images"],
            "images_only": params["images_only"],
            "staged_dir": params["staged_dir"],
            "state": "present",
            "stop_first": True,
            "lease": params["lease"],
        }

    def page_params(self, enabled):
        params = self.params
        maintenance = {
            "enabled": enabled,
            "probe_urls": params["maintenance"]["probe_urls"],
            "probe_timeout": params["maintenance"]["probe_timeout"],
        }
        out = {name: params[name] for name in ("app", "path", "lb", "routes", "lease", "up_timeout")}
        if enabled:
            if params["record"]:
                out["record"] = {"release_id": params["record"]["release_id"], "step": params["record"]["step"]}
        else:
            maintenance["wait_up"] = params["color"]
            verified = ((self.on.result if self.on else {}).get("maintenance") or {}).get("verified_at")
            if verified is not None:
                maintenance["since"] = verified
        return {**out, "maintenance": maintenance}

    def traffic(self, enabled):
        return Traffic(ModuleView(self.module, traffic_argument_spec(), self.page_params(enabled)))

    # -- the run -----------------------------------------------------------------------------------
    def run(self):
        compose = self.compose
        validate_static(compose.params)
        compose.require_sdk()
        # The page's options checked before anything is read: a bad route, URL or record changes nothing.
        page_on = self.traffic(True)
        page_on.check_params()
        self.traffic(False).check_params()
        with compose.lease.kept():  # nothing changes under another run's release lock
            prepared = compose.prepare_present(compose.cli.containers())
            self.result["page"] = PAGE_ON  # from here the page may be on, if only on some routes
            self.on = page_on
            self.on.run()
            self.collect()
            try:
                compose.apply_present(prepared)
            finally:
                self.collect()
            if self.params["resume"]:
                self.off = self.traffic(False)
                self.off.run()
                self.result["page"] = PAGE_RESUMED
                self.collect()
        if self.module.check_mode:
            self.result["page"] = PAGE_OFF  # nothing was put on
        return self.result

    def collect(self):
        """The result so far: each part's own, `changed` from all, `touched` from the project's."""
        result, compose = self.result, self.compose.result
        result["project"] = {k: v for k, v in compose.items() if k not in ("diff", "changed")}
        result["touched"] = bool(compose.get("touched"))
        for key in ("stopped_s", "ready_s", "images"):
            if key in compose:
                result[key] = compose[key]
        diffs = [compose["diff"]] if compose.get("diff") else []
        for name, part in (("page_on", self.on), ("page_off", self.off)):
            if part is None:
                continue
            result[name] = part.result.get("maintenance") or {}
            diffs += part.result.get("diff") or []
            result["changed"] = result["changed"] or part.result["changed"]
        result["changed"] = result["changed"] or bool(compose.get("changed"))
        if "outage_ms" in result.get("page_off", {}):
            result["outage_ms"] = result["page_off"]["outage_ms"]
        if diffs and self.module._diff:
            result["diff"] = diffs
        return result

    def partial_result(self):
        """What a failure leaves (run_module's): whether the old version was touched, and where the page is."""
        return self.collect()
