"""A release's report as the report role left it: its files on the host and the controller, its page
rendered by headless Chromium (Debian's `chromium`), and the screenshot's chart areas."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from PIL import Image

# The colors matplotlib draws each color's line with (plugins/module_utils/report/charts.py).
LINE_COLORS = {"blue": (0x1F, 0x5F, 0xBF), "green": (0x1E, 0x8F, 0x3E)}


def report_files(state: Path, reports: Path, release_id: str) -> dict:
    """The report's files: on the host (next to the ledger) and on the controller; each must exist."""
    files = {
        "host_json": state / "reports" / f"{release_id}.json",
        "host_html": state / "reports" / f"{release_id}.html",
        "host_archive": state / "reports" / f"{release_id}.tar.gz",
        "html": reports / f"{release_id}.html",
        "json": reports / f"{release_id}.json",
        "archive": reports / f"{release_id}.tar.gz",
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    assert not missing, f"missing report files: {missing}"
    return files


def load(files: dict) -> dict:
    return json.loads(files["json"].read_text())


def archive_text(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


def screenshot(html: Path, out: Path, size: str = "1200,2600") -> Image.Image:
    chromium = shutil.which("chromium")
    assert chromium, "the testbed installs Debian's chromium package (tests/testbed/testbed.sh)"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--screenshot={out}",
            f"--window-size={size}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Image.open(out).convert("RGB")


def chart_bands(image: Image.Image, band: int = 50, near: int = 40) -> dict[str, set[int]]:
    """For each color's line, the bands (of `band` pixel rows) of the page where its pixels are drawn."""
    width, height = image.size
    pixels = image.load()
    seen: dict[str, set[int]] = {c: set() for c in LINE_COLORS}
    for y in range(0, height, 2):
        for x in range(0, width, 2):
            r, g, b = pixels[x, y]
            for color, (cr, cg, cb) in LINE_COLORS.items():
                if abs(r - cr) + abs(g - cg) + abs(b - cb) < near:
                    seen[color].add(y // band)
    return seen
