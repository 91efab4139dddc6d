"""Schemathesis against the running server's own OpenAPI spec: no 5xx, nothing off-spec."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers import Running

# Two checks judge behaviour the spec cannot express, and that is deliberate here:
# - positive_data_acceptance: a schema-valid domain we do not serve, or a taken local
#   part, is refused (422/409): the set of served domains is configuration, not schema.
# - ensure_resource_availability: a new inbox answers 404 to anyone without its token;
#   that is the capability model, not a lost resource.
EXCLUDED = "positive_data_acceptance,ensure_resource_availability"


def schemathesis(spec: str, token: str, reports: Path, *options: str) -> str:
    """Run schemathesis (from the test extras) on a spec with a bearer token; its output,
    after it passed."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            spec,
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED,
            *options,
            "--max-examples",
            "30",
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
            "--seed",
            "1",
            "--report-dir",
            str(reports),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


def operations_in(spec: str) -> int:
    return sum(len(methods) for methods in httpx.get(spec).json()["paths"].values())


def test_the_api_keeps_to_its_spec(start_burnbox: Callable[..., Running], tmp_path: Path) -> None:
    server = start_burnbox(inbox_create_rate="100000/s", failed_read_rate="100000/s")
    token = httpx.post(server.http + "/api/inboxes", json={"local_part": "fuzz"}).json()["token"]
    spec = server.http + "/api/openapi.json"
    output = schemathesis(spec, token, tmp_path)
    assert f"Tested: {operations_in(spec)}" in output  # every operation was exercised


def test_the_mailtm_api_keeps_to_its_spec(
    start_burnbox: Callable[..., Running], tmp_path: Path
) -> None:
    from burnbox.settings_values import Endpoint

    server = start_burnbox(
        mailtm_listen=Endpoint("127.0.0.1", 0),
        mailtm_rate="100000/s",
        mailtm_account_rate="100000/s",
        inbox_create_rate="100000/s",
        failed_read_rate="100000/s",
    )
    assert server.app.mailtm_endpoint is not None
    base = f"http://127.0.0.1:{server.app.mailtm_endpoint.port}"
    credentials = {"address": "fuzz@localhost", "password": "fuzz-password"}
    assert httpx.post(base + "/accounts", json=credentials).status_code == 201
    token = httpx.post(base + "/token", json=credentials).json()["token"]
    # As for the own API; and the Mercure stream never ends by itself, so it is not fuzzed
    # here (tests/test_mailtm_api.py covers it).
    output = schemathesis(
        base + "/openapi.json", token, tmp_path, "--exclude-path", "/.well-known/mercure"
    )
    assert f"Tested: {operations_in(base + '/openapi.json') - 1}" in output
