from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from burnbox import settings as settings_module
from burnbox import settings_values
from burnbox.settings import Settings, SettingsError, env_key, load
from burnbox.settings_values import Endpoint

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_defaults_work_on_a_laptop() -> None:
    settings = load(environ={}, env_file=None)
    assert settings.smtp_listen == Endpoint("127.0.0.1", 2525)
    assert settings.http_listen == Endpoint("127.0.0.1", 8025)
    assert settings.domains == ("localhost",)
    assert settings.store == "memory://"
    assert settings.message_ttl == 86400


def test_flags_beat_environment_beats_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "BURNBOX_DOMAINS=file.test\nBURNBOX_MAX_RECIPIENTS=7\nBURNBOX_MESSAGE_TTL=2h\n"
    )
    settings = load(
        flags={"domains": "flag.test"},
        environ={"BURNBOX_DOMAINS": "env.test", "BURNBOX_MAX_RECIPIENTS": "9"},
        env_file=env_file,
    )
    assert settings.domains == ("flag.test",)
    assert settings.max_recipients == 9
    assert settings.message_ttl == 7200


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("BURNBOX_SMTP_LISTEN", "localhost", "BURNBOX_SMTP_LISTEN: 'localhost' is not valid"),
        ("BURNBOX_SMTP_LISTEN", "127.0.0.1:99999", "BURNBOX_SMTP_LISTEN"),
        ("BURNBOX_MAX_MESSAGE_SIZE", "big", "BURNBOX_MAX_MESSAGE_SIZE"),
        ("BURNBOX_MESSAGE_TTL", "1 fortnight", "BURNBOX_MESSAGE_TTL"),
        ("BURNBOX_RECEIVED_CLIENT_IP", "maybe", "BURNBOX_RECEIVED_CLIENT_IP"),
        ("BURNBOX_MAX_RECIPIENTS", "0", "BURNBOX_MAX_RECIPIENTS"),
        ("BURNBOX_STORE", "mysql://x", "BURNBOX_STORE"),
        ("BURNBOX_TLS_CERT", "/nonexistent.pem", "BURNBOX_TLS_CERT"),
        ("BURNBOX_DOMIANS", "typo.test", "BURNBOX_DOMIANS: unknown setting"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load(environ={key: value}, env_file=None)


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(SettingsError, match="flag --http-listen"):
        load(flags={"http_listen": "nope"}, environ={}, env_file=None)


@pytest.mark.parametrize(("text", "size"), [("25MiB", 25 * 2**20), ("64k", 64000), ("10", 10)])
def test_sizes(text: str, size: int) -> None:
    assert settings_values.parse_size(text) == size


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("500ms", 0.5), ("90", 90)])
def test_durations(text: str, seconds: float) -> None:
    assert settings_values.parse_duration(text) == seconds


def test_every_setting_is_documented() -> None:
    documented = DOCS.read_text()
    for item in dataclasses.fields(Settings):
        assert f"`{env_key(item.name)}`" in documented, f"{env_key(item.name)} is undocumented"
        assert item.metadata["help"]


WORKERS = {
    "BURNBOX_WORKERS": "2",
    "BURNBOX_SMTP_LISTEN": "127.0.0.1:2525",
    "BURNBOX_HTTP_LISTEN": "127.0.0.1:8025",
}


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("memory://", "several workers need a PostgreSQL store"),
        # One writer, totals in memory: two processes on one file would each see half the truth.
        ("sqlite:///tmp/burnbox-workers.db", "several workers need a PostgreSQL store"),
    ],
)
def test_several_workers_need_postgresql(store: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"BURNBOX_WORKERS: {message}"):
        load(environ={**WORKERS, "BURNBOX_STORE": store}, env_file=None)


def test_several_workers_need_explicit_ports() -> None:
    with pytest.raises(SettingsError, match=r"BURNBOX_WORKERS: .* explicit ports"):
        load(
            environ={
                **WORKERS,
                "BURNBOX_STORE": "postgresql://db/burnbox",
                "BURNBOX_SMTP_LISTEN": "127.0.0.1:0",
            },
            env_file=None,
        )


def test_several_workers_on_postgresql_push_through_it() -> None:
    settings = load(environ={**WORKERS, "BURNBOX_STORE": "postgresql://db/burnbox"}, env_file=None)
    assert settings_module.with_workers_hub(settings).hub == "postgres"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"BURNBOX_WEBHOOK_URL": "https://hooks.example.org/x"}, "BURNBOX_WEBHOOK_SECRET"),
        (
            {
                "BURNBOX_WEBHOOK_URL": "https://h.example.org/",
                "BURNBOX_WEBHOOK_SECRET": "whsec_c2hvcnQ=",
            },
            "BURNBOX_WEBHOOK_SECRET",
        ),
        ({"BURNBOX_WEBHOOK_ALLOW": "10.0.0.0/8,not-a-cidr"}, "BURNBOX_WEBHOOK_ALLOW"),
    ],
)
def test_webhook_settings_are_checked_at_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(environ=environ, env_file=None)
