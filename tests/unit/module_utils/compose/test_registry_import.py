"""compose_project does not import the Docker SDK unless a tag is resolved: the import costs about 0.14 s per call,
and a recreate's outage holds a compose_project call that gives digests only."""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_collections.switchyard.release.plugins.module_utils.compose import registry


def test_the_module_loads_without_the_docker_sdk_and_says_whether_it_is_there() -> None:
    code = (
        "import sys\n"
        "import ansible_collections.switchyard.release.plugins.modules.compose_project\n"
        "print('docker' in sys.modules)\n"
    )
    # Where pytest imports the collection from (build/collections, linked to this checkout).
    env = {**os.environ, "PYTHONPATH": os.path.abspath(registry.__file__).split("/ansible_collections/")[0]}
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert ran.stdout.strip() == "False"
    assert registry.HAS_DOCKER_SDK is True and registry.DOCKER_SDK_IMPORT_ERROR is None
