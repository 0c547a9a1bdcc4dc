"""What the integration tests of each LB kind share: the routes their stack runs (a second route whose colors are
never deployed), a client run in a container the LB does not trust, a stack of one kind, and the backend used
in-process with the real commands."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

from ansible_collections.switchyard.release.plugins.module_utils.common.errors import SwitchyardError
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import load_balancer
from support.compose import unique_name
from support.stack import Stack

ROUTES = [
    {"name": "api", "port": 8000, "health_path": "/health"},
    {"name": "ghost", "port": 8000, "health_path": "/health", "path_prefix": "/ghost/"},
]

# Run in a container on <app>_public (a source the LB does not trust): each header value, what came back.
UNTRUSTED_CLIENT = """
import json, sys, urllib.request
out = {}
for value in sys.argv[2:]:
    seen = []
    for _ in range(5):
        request = urllib.request.Request(sys.argv[1], headers={"X-Canary": value})
        with urllib.request.urlopen(request, timeout=5) as resp:
            seen.append({"color": json.loads(resp.read())["color"], "server": resp.headers.get("X-Switchyard-Server")})
    out[value] = seen
print(json.dumps(out))
"""


class Runner:
    """The real commands, as CommandRunner runs them (the backend used in-process)."""

    environ: dict = {}

    def run(self, args, what, check=True, data=None):
        done = subprocess.run(args, capture_output=True, text=True, input=data, check=False, timeout=60)
        if check and done.returncode != 0:
            raise SwitchyardError(f"{what} failed: {done.stderr}")
        return done.returncode, done.stdout, done.stderr


def kind_stack(testbed, tmp_path_factory, kind: str) -> Iterator[Stack]:
    """The stack of a module's tests: the lb role of this kind over ROUTES, data, blue v1 and green v2."""
    built = Stack(testbed, tmp_path_factory.mktemp(kind), unique_name(kind[:3]), kind=kind)
    built.lb_vars["switchyard_lb_routes"] = ROUTES
    try:
        yield built.up()
    finally:
        built.down()


def backend(stack: Stack):
    """The stack's LB backend, in-process."""
    return load_balancer({"kind": stack.kind, "dir": str(stack.lb_dir), "container": stack.lb_container}, Runner())
