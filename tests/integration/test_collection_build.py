"""The collection builds into a tarball that installs without Galaxy (dependencies come from the
`ansible` package already in the environment)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def galaxy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "ansible-galaxy"), *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )
    assert result.returncode == 0, f"ansible-galaxy {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def test_build_and_install_offline(repo_root: Path, tmp_path: Path) -> None:
    meta = yaml.safe_load((repo_root / "galaxy.yml").read_text())
    galaxy("collection", "build", "--output-path", str(tmp_path / "dist"), str(repo_root), cwd=tmp_path)
    tarball = tmp_path / "dist" / f"switchyard-release-{meta['version']}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names and "meta/runtime.yml" in names
    # Development tooling and secrets stay out of the artifact users install.
    assert not [n for n in names if n.startswith(("tests/testbed", "examples/app/secrets", ".venv", "build/"))]

    install_dir = tmp_path / "collections"
    galaxy("collection", "install", "--offline", "-p", str(install_dir), str(tarball), cwd=tmp_path)
    listed = galaxy("collection", "list", "-p", str(install_dir), "switchyard.release", cwd=tmp_path).stdout
    assert f"switchyard.release {meta['version']}" in " ".join(listed.split())
