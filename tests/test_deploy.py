"""Deployment files, checked without a container engine (none runs here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.process import start_node

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent  # check-jsonschema and hadolint come with the test extras


def test_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(TOOLS / "hadolint"), str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_images_install_step_gives_a_working_server(tmp_path: Path) -> None:
    """`pip install --prefix=/install .` as in the Dockerfile, then run from that prefix."""
    prefix = tmp_path / "install"
    # --ignore-installed: otherwise pip first uninstalls the burnbox the tests are running.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
                    "--ignore-installed", "--quiet", f"--prefix={prefix}", str(ROOT)],
                   check=True, timeout=300)
    site = next(prefix.glob("lib/python*/site-packages"))
    installed = site / "burnbox"
    assert (installed / "web" / "static" / "index.html").is_file()
    assert sorted(p.name for p in (installed / "storage" / "schema").glob("*/*.sql"))
    node = start_node("--store", f"sqlite://{tmp_path}/b.db", cwd=tmp_path,
                      env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin",
                           "PYTHONNOUSERSITE": "1"})
    try:
        assert httpx.get(f"{node.http}/readyz").status_code == 200
        page = httpx.get(f"{node.http}/")
        assert page.status_code == 200
        assert "burnbox" in page.text
        imported = subprocess.run(
            [sys.executable, "-c", "import burnbox; print(burnbox.__file__)"],
            env={"PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"},
            capture_output=True, text=True, check=True, cwd=tmp_path)
        assert imported.stdout.startswith(str(site))  # it ran the installed copy
    finally:
        node.stop()
