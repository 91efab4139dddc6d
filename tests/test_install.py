"""What users install is what is tested: the wheel in a bare virtual environment, the
Dockerfile's install step exactly as written, and the README's `scripts/serve` from a fresh
copy of the repository. Each runs the main job end to end as a user would: mail over SMTP,
the message in the API list, its SSE event, its WebSocket event, the page showing it in
headless Chromium, /readyz 200, then SIGTERM and a clean exit.

Installs run on the machine's real clock (pip checks certificates against it); burnbox
itself runs with whatever clock the suite runs under (the CI's clock-shifted run moves it
400 days ahead).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from httpx_sse import connect_sse
from playwright.sync_api import Browser
from websockets.sync.client import connect as ws_connect

from tests.process import Node, free_port, start_node

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "burnbox"
# The interpreter the test environment was made from: what a user would make a venv with.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
# Modules the service imports by name at run time (uvicorn loads them from strings), which
# an import scan of burnbox's own code cannot see.
LOADED_BY_NAME = {"websockets": "uvicorn ws='websockets-sansio'", "httptools": "uvicorn http"}
FAKED_CLOCK = ("LD_PRELOAD", "CLOCKSHIFT_SECONDS")  # .ci/run's clock-shifted run
INSTALL_TIMEOUT = 600
# A test here makes virtual environments and installs into them (pip, twice for some): on
# a busy machine that takes minutes, not the suite's usual bound.
pytestmark = pytest.mark.timeout(2 * INSTALL_TIMEOUT + 120)


def real_clock(env: dict[str, str]) -> dict[str, str]:
    """`env` without a faked clock (for pip, which checks certificates against the clock)."""
    return {key: value for key, value in env.items() if key not in FAKED_CLOCK}


def bare_env(**extra: str) -> dict[str, str]:
    """What a fresh shell has: no PYTHONPATH, no user site, nothing of the test venv; the
    suite's clock (a faked one included) is kept."""
    kept = {
        key: os.environ[key]
        for key in (*FAKED_CLOCK, "HOME", "LANG", "TMPDIR")
        if key in os.environ
    }
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONNOUSERSITE": "1", **kept, **extra}


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=real_clock(env or dict(os.environ)),
        cwd=cwd,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{shlex.join(map(str, command))}\n{result.stderr[-3000:]}"


# -- what the service imports is what it declares ----------------------------------------


def imported_distributions() -> dict[str, str]:
    """Every third-party module burnbox's code imports → the distribution providing it."""
    providers = importlib.metadata.packages_distributions()
    modules: set[str] = set(LOADED_BY_NAME)
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"burnbox"}
    return {module: providers[module][0] for module in sorted(third_party)}


def declared(extra: str | None) -> set[str]:
    requirements = importlib.metadata.requires("burnbox") or []
    names = set()
    for requirement in requirements:
        in_extra = re.search(r"extra\s*==\s*['\"](\w+)['\"]", requirement)
        if (in_extra.group(1) if in_extra else None) == extra:
            names.add(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
    return {name.lower().replace("_", "-") for name in names}


def test_every_import_of_the_service_is_a_runtime_dependency() -> None:
    imported = imported_distributions()
    assert len(imported) >= 10, imported  # the scan found the code's imports
    runtime = declared(None)
    missing = {
        module: dist
        for module, dist in imported.items()
        if dist.lower().replace("_", "-") not in runtime
    }
    assert missing == {}, f"imported by the service but not a runtime dependency: {missing}"
    assert "websockets" in runtime  # the WebSocket side of uvicorn, loaded by name


# -- the main job, as a user does it --------------------------------------------------------


def drive_main_job(node: Node, browser: Browser) -> None:
    """Mail in over SMTP, then seen in the list, on SSE, on the WebSocket, in the page."""
    created = httpx.post(node.http + "/api/inboxes", json={})
    assert created.status_code == 201, created.text
    inbox = created.json()
    address, headers = inbox["address"], {"Authorization": f"Bearer {inbox['token']}"}
    base = f"{node.http}/api/inboxes/{quote(address)}"
    socket_url = base.replace("http://", "ws://", 1) + "/ws"
    with (
        httpx.Client(timeout=15) as client,
        connect_sse(client, "GET", base + "/events", headers=headers) as source,
        ws_connect(socket_url, additional_headers=headers, open_timeout=15) as socket,
    ):
        events = source.iter_sse()
        assert next(events).retry  # subscribed
        with smtplib.SMTP("127.0.0.1", node.smtp, timeout=15) as smtp:
            smtp.sendmail(
                "sender@example.org",
                [address],
                b"Subject: installed\r\n\r\nYour code is 482913\r\n",
            )
        pushed = next(event for event in events if event.event == "message")
        assert json.loads(pushed.data)["subject"] == "installed"
        over_socket = json.loads(socket.recv(timeout=15))
        assert over_socket["event"] == "message"
        assert over_socket["data"]["subject"] == "installed"
    listed = httpx.get(base + "/messages", headers=headers).json()["messages"]
    assert [message["subject"] for message in listed] == ["installed"]
    page_shows_new_mail(node, browser)
    assert httpx.get(node.http + "/readyz").status_code == 200


def page_shows_new_mail(node: Node, browser: Browser) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(node.http + "/")
        page.locator("#address", has_text="@").wait_for(timeout=15_000)
        address = page.text_content("#address") or ""
        with smtplib.SMTP("127.0.0.1", node.smtp, timeout=15) as smtp:
            smtp.sendmail(
                "sender@example.org", [address], b"Subject: seen in the page\r\n\r\nhello\r\n"
            )
        page.locator("#messages button", has_text="seen in the page").wait_for(timeout=15_000)
    finally:
        context.close()


def stops_cleanly(node: Node) -> None:
    status, stderr = node.stop(signal.SIGTERM)
    assert status == 0, stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    run(BASE_PYTHON, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", folder, ROOT)
    [built] = folder.glob("burnbox-*.whl")
    return built


@pytest.fixture(scope="module")
def bare_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A brand-new virtual environment holding the wheel and what it declares: no extras."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    run(BASE_PYTHON, "-m", "venv", venv, env=bare_env())
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, env=bare_env())
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def installed_python(venv: Path, code: str) -> str:
    """What `code` prints, run by the venv's Python outside the source tree."""
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run(
            [venv / "bin" / "python", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=bare_env(),
            cwd=elsewhere,
        ).stdout


def test_the_installed_wheel_does_the_main_job(
    bare_venv: Path, browser: Browser, tmp_path: Path
) -> None:
    found = installed_python(bare_venv, "import burnbox, sys; print(burnbox.__file__, sys.path)")
    assert found.startswith(str(bare_venv))  # the installed copy, not the source tree
    assert str(ROOT) not in found
    assert ".venv" not in found.replace(str(bare_venv), "")
    assert not list(bare_venv.glob("lib/python*/site-packages/pytest"))  # no test extras
    assert list(bare_venv.glob("lib/python*/site-packages/websockets"))
    node = start_node(
        serve=[str(bare_venv / "bin" / "burnbox"), "serve"], env=bare_env(), cwd=tmp_path
    )
    try:
        drive_main_job(node, browser)
    finally:
        stops_cleanly(node)


def test_the_installed_wheel_carries_caniemails_data(bare_venv: Path) -> None:
    """The HTML check reads its support data from the package: it must be in the wheel."""
    probe = (
        "from burnbox.qa.htmlcheck.report import check; "
        "print(check('<p>x</p>')['Warnings'][0]['Slug'])"
    )
    assert installed_python(bare_venv, probe).strip() == "html-p"


def dockerfile_install_step() -> list[str]:
    """The build stage's `RUN python -m pip install ...` line, exactly as written."""
    text = (ROOT / "Dockerfile").read_text()
    [line] = [
        line for line in text.splitlines() if line.startswith("RUN ") and "pip install" in line
    ]
    return shlex.split(line.removeprefix("RUN "))


def test_the_images_install_step_gives_a_working_server(tmp_path: Path, browser: Browser) -> None:
    """The Dockerfile's build stage, run here: its COPY lines, then its pip line as is
    (dependencies included), into a prefix that the runtime stage copies to /usr/local."""
    command = dockerfile_install_step()
    assert "--no-deps" not in command
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(ROOT / "src", context / "src")
    prefix = tmp_path / "install"
    command = [BASE_PYTHON if part == "python" else part for part in command]
    command = [f"--prefix={prefix}" if part == "--prefix=/install" else part for part in command]
    assert f"--prefix={prefix}" in command
    run(*command, env=bare_env(), cwd=context)
    [site] = prefix.glob("lib/python*/site-packages")
    env = bare_env(PYTHONPATH=str(site), PATH=f"{prefix / 'bin'}:/usr/local/bin:/usr/bin:/bin")
    node = start_node(
        serve=[BASE_PYTHON, str(prefix / "bin" / "burnbox"), "serve"], env=env, cwd=tmp_path
    )
    try:
        drive_main_job(node, browser)
    finally:
        stops_cleanly(node)


def test_the_readmes_serve_command_works_from_a_fresh_copy(tmp_path: Path) -> None:
    """`scripts/serve` in a copy of the repository with no .venv: it makes one, installs,
    and serves a page that answers."""
    readme = (ROOT / "README.md").read_text()
    assert "scripts/serve " in readme
    assert "scripts/test " in readme
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    clone = tmp_path / "burnbox"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    assert not (clone / ".venv").exists()
    mailtm = free_port()  # scripts/serve turns the mail.tm API on (8026 unless told)
    env = real_clock(bare_env(PYTHON=BASE_PYTHON, BURNBOX_MAILTM_LISTEN=f"127.0.0.1:{mailtm}"))
    node = start_node(serve=[str(clone / "scripts" / "serve")], env=env, cwd=clone)
    try:
        page = httpx.get(node.http + "/")
        assert page.status_code == 200
        assert "burnbox" in page.text
        assert httpx.get(node.http + "/readyz").status_code == 200
        domains = httpx.get(
            f"http://127.0.0.1:{mailtm}/domains", headers={"accept": "application/json"}
        )
        assert domains.json()[0]["domain"] == "localhost"
    finally:
        stops_cleanly(node)
    assert (clone / ".venv" / "bin" / "burnbox").is_file()
