"""Secure by default: outside `MGRECS_ENV=development` a service does not start on an empty
or placeholder secret, and says which variable to set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, wait_healthy
from mgrecs.common.settings import Settings
from mgrecs.common.startup_secrets import insecure_secrets, is_placeholder, require_secrets
from support.paths import REPO_ROOT

REAL = "kP3v9W2xQe7LmZ0aT5yB8nR4"
EXAMPLE_ENV = REPO_ROOT / "deploy" / "example.env"


@pytest.mark.parametrize(
    "value",
    ["", "  ", "change-me", "CHANGE-ME-admin-key", "changeme", "mgrecs-local-secret", "secret"],
)
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


def test_a_random_value_is_not_a_placeholder() -> None:
    assert not is_placeholder(REAL)


def test_every_secret_in_the_example_env_is_a_placeholder() -> None:
    """Copied as is, deploy/example.env starts nothing: each secret has to be replaced."""
    lines = EXAMPLE_ENV.read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")
    assert values["MGRECS_ENV"] == "production"
    names = ["api_read_keys", "api_admin_keys", "ingest_api_keys", "aws_secret_access_key"]
    names.append("engine_credentials")
    settings = Settings(
        database_url=values["MGRECS_DATABASE_URL"],
        **{name: values[f"MGRECS_{name.upper()}"] for name in names},
    )
    assert insecure_secrets(settings, names) == [
        "MGRECS_DATABASE_URL holds a placeholder password",
        *(f"MGRECS_{name.upper()} holds a placeholder value" for name in names),
    ]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("postgresql://mgrecs:mgrecs@postgres:5432/mgrecs", True),
        ("postgresql://mgrecs:change-me-db-password@db/mgrecs", True),
        ("postgresql://mgrecs:@db/mgrecs", True),
        (f"postgresql://mgrecs:{REAL}@db/mgrecs", False),
        ("postgresql://postgres@127.0.0.1:5432/postgres", False),  # no password: peer/trust
        ("postgresql:///mgrecs?host=/run/postgresql", False),
    ],
)
def test_a_placeholder_database_password_is_refused(url: str, refused: bool) -> None:
    problems = insecure_secrets(Settings(database_url=url), [])
    assert problems == (["MGRECS_DATABASE_URL holds a placeholder password"] if refused else [])


def test_each_entry_of_a_list_must_be_real() -> None:
    settings = Settings(
        api_read_keys=f"{REAL}, change-me-read-key",
        engine_credentials=f"a:{REAL},b:mgrecs-local-secret",
        ingest_api_keys=f"{REAL},{REAL}x",
    )
    assert insecure_secrets(settings, ["ingest_api_keys"]) == []
    assert insecure_secrets(settings, ["api_read_keys", "engine_credentials"]) == [
        "MGRECS_API_READ_KEYS holds a placeholder value",
        "MGRECS_ENGINE_CREDENTIALS holds a placeholder value",
    ]


def test_optional_secrets_may_be_empty_but_not_placeholders() -> None:
    empty = Settings(api_admin_keys="")
    assert insecure_secrets(empty, [], may_be_empty=["api_admin_keys"]) == []
    example = Settings(api_admin_keys="change-me-admin-key")
    assert insecure_secrets(example, [], may_be_empty=["api_admin_keys"]) == [
        "MGRECS_API_ADMIN_KEYS holds a placeholder value"
    ]


def test_the_kafka_password_is_needed_with_sasl() -> None:
    sasl = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password="")
    assert insecure_secrets(sasl, []) == ["MGRECS_KAFKA_SASL_PASSWORD is empty"]
    assert insecure_secrets(Settings(), []) == []


def test_development_skips_the_check_production_exits_with_the_reason() -> None:
    require_secrets(Settings(env="development", api_read_keys=""), "api_read_keys")
    with pytest.raises(SystemExit) as exited:
        require_secrets(Settings(env="production", api_read_keys=""), "api_read_keys")
    message = str(exited.value.code)
    assert "MGRECS_API_READ_KEYS is empty" in message and "MGRECS_ENV=development" in message


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / command
    return subprocess.run(
        [str(executable)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        ("mgrecs-engine", "MGRECS_ENGINE_CREDENTIALS"),
        ("mgrecs-api", "MGRECS_API_READ_KEYS"),
        ("mgrecs-connector", "MGRECS_CONNECTOR_TOKEN"),
    ],
)
def test_a_service_with_a_placeholder_secret_exits_with_a_clear_message(
    command: str, variable: str
) -> None:
    done = _run(
        command,
        {
            "MGRECS_ENV": "production",
            "MGRECS_ENGINE_CREDENTIALS": "mgrecs:change-me",
            "MGRECS_API_READ_KEYS": "",
            "MGRECS_AWS_SECRET_ACCESS_KEY": REAL,
        },
    )
    assert done.returncode != 0
    assert variable in done.stderr and "refusing to start" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_same_service_starts_in_development(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MGRECS_ENV": "development",
        "MGRECS_ENGINE_CREDENTIALS": "mgrecs:change-me",
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_ENGINE_PORT": str(port),
    }
    engine = ServiceProcess("engine", ["mgrecs-engine"], env, tmp_path / "engine.log")
    engine.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", engine)
    finally:
        engine.terminate()
        engine.wait()
