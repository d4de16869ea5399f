"""The secrets a service needs, checked once at start: no deployed service runs on an empty or
well-known placeholder secret (README, Security).

`MGRECS_ENV=development` (the demo, tests) skips the check. Otherwise a service whose secret
is empty or a placeholder exits with a message naming the variable and how to set it, before
it opens a port or a connection.
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from mgrecs.common.settings import Settings

PLACEHOLDERS = frozenset(
    {"mgrecs-local-secret", "change-me", "changeme", "secret", "password", "mgrecs", "postgres"}
)
"""Values shipped as defaults or examples; a value containing `change-me` / `changeme` (as in
deploy/example.env and deploy/k8s/config.yml) counts as one too."""
KEY_LISTS = frozenset({"api_read_keys", "api_admin_keys", "ingest_api_keys"})
"""Settings holding comma-separated keys: each key must be real."""
CREDENTIAL_LISTS = frozenset({"engine_credentials"})
"""Settings holding comma-separated `key:secret` pairs: each secret must be real."""
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def is_placeholder(value: str) -> bool:
    """Empty, a shipped default, or an example value that asks to be changed."""
    folded = value.strip().lower()
    return not folded or folded in PLACEHOLDERS or "change-me" in folded or "changeme" in folded


def _values(name: str, raw: str) -> list[str]:
    """The secret values a setting holds (one, or each entry of a list)."""
    if name not in KEY_LISTS | CREDENTIAL_LISTS:
        return [raw]
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()] or [""]
    if name in CREDENTIAL_LISTS:
        return [entry.partition(":")[2] for entry in entries]
    return entries


def insecure_secrets(
    settings: Settings, names: Iterable[str], may_be_empty: Iterable[str] = ()
) -> list[str]:
    """The problems with the named settings (empty when they are all real secrets).

    `may_be_empty` settings turn a feature off when empty (e.g. no admin keys: the admin
    endpoints answer 403); set, they must not be placeholders. With SASL on, the Kafka
    password is checked too."""
    optional = set(may_be_empty)
    wanted = [*names, *optional]
    if settings.kafka_security_protocol in SASL_PROTOCOLS:
        wanted.append("kafka_sasl_password")
    problems = _database_password(settings.database_url)
    for name in dict.fromkeys(wanted):
        raw = str(getattr(settings, name))
        if name in optional and not raw.strip():
            continue
        values = _values(name, raw)
        if any(not value.strip() for value in values):
            problems.append(f"MGRECS_{name.upper()} is empty")
        elif any(is_placeholder(value) for value in values):
            problems.append(f"MGRECS_{name.upper()} holds a placeholder value")
    return problems


def _database_password(url: str) -> list[str]:
    """Every service connects to PostgreSQL: a password in its URL must be real too (a URL
    without one, e.g. a local socket with peer or trust authentication, is left alone)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []  # not a URL this check can read: asyncpg will say what is wrong with it
    if password is not None and is_placeholder(password):
        return ["MGRECS_DATABASE_URL holds a placeholder password"]
    return []


def require_secrets(
    settings: Settings, *names: str, may_be_empty: Iterable[str] = (), service: str = "mgrecs"
) -> None:
    """Exit (status 1, no stack trace) when a needed secret is empty or a placeholder,
    unless `env` is `development`."""
    if settings.env == "development":
        return
    problems = insecure_secrets(settings, names, may_be_empty)
    if problems:
        raise SystemExit(
            f"{service}: refusing to start: {'; '.join(problems)}. Set each to a long random "
            "value (e.g. `openssl rand -hex 32`) from your secret store (README, Security), "
            "or set MGRECS_ENV=development for a local, unsecured run."
        )
