"""End to end: the same release against this machine reached over SSH, as a remote Docker host is.

The test starts its own sshd on 127.0.0.1 (key authentication only, its own host key and config)
and stops it by its PID; the inventory is the local one's application with an SSH connection.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.compose import free_port
from support.load import Load
from support.release import INVENTORY, ReleasedApp
from support.testbed import REPO_ROOT

pytestmark = pytest.mark.timeout(900)

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
# Sessions start as a nested shell, so bash skips root's ~/.bashrc (SHLVL >= 2): this machine's profile (pyenv's init)
# costs ~0.1 s of CPU on every task; a Docker host in production has its own, usually nothing of the kind.
SetEnv SHLVL=1
Subsystem sftp /usr/lib/openssh/sftp-server
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("sshd")
    port = free_port()
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / key)], check=True)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    (directory / "sshd_config").write_text(SSHD_CONFIG.format(port=port, dir=directory))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = directory / "sshd.log"
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(directory / "sshd_config")], stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"sshd did not listen on {port}: {log.read_text()}"
                time.sleep(0.1)
        yield {"port": port, "key": directory / "client_key", "log": log}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def remote_app(testbed, sshd, tmp_path_factory) -> Iterator[ReleasedApp]:
    workdir = tmp_path_factory.mktemp("ssh-release")
    inventory = workdir / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "docker_hosts:\n  hosts:\n    docker-over-ssh:\n"
        "      ansible_connection: ssh\n      ansible_host: 127.0.0.1\n"
        f"      ansible_port: {sshd['port']}\n      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {sshd['key']}\n"
        "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    group_vars = (INVENTORY / "group_vars" / "docker_hosts.yml").read_text()
    (inventory / "group_vars" / "docker_hosts.yml").write_text(
        group_vars.replace("{{ inventory_dir }}/../..", str(REPO_ROOT))
    )
    app = ReleasedApp(workdir, kind="ssh")
    app.inventory = inventory
    try:
        yield app
    finally:
        app.down()


def test_release_and_rollback_over_ssh(remote_app, sshd) -> None:
    first = remote_app.play("release.yml", switchyard_version="v1")
    assert "docker-over-ssh" in first.stdout
    assert remote_app.answer()["version"] == "v1"
    load = Load(remote_app.url + "/", rate=100, seconds=300).start()
    remote_app.play("release.yml", switchyard_version="v2")
    assert remote_app.answer()["version"] == "v2"
    assert remote_app.last_release()["outcome"] == "promoted"
    remote_app.play("rollback.yml")
    assert remote_app.answer()["version"] == "v1"
    load.stop()
    assert not [s for s in load.answers if s != 200]
    status = remote_app.play("status.yml")
    assert f'"{remote_app.app}: live blue v1, previous green"' in status.stdout, status.stdout[-3000:]
    assert "Accepted publickey for root" in sshd["log"].read_text(), "the playbooks did not go through sshd"
