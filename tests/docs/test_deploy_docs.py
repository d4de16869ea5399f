"""docs/operations.md: every `mgrecs` command it names exists, and each troubleshooting
symptom comes with commands and metrics that exist."""

import re

from support.deploy_files import (
    COMMAND,
    GUIDE,
    REPO_ROOT,
    cli_commands,
    cli_options,
    code,
    defined_metrics,
    metrics_in,
)

SYMPTOMS = ("Empty recommendations", "Low match rates", "Missing products", "High latency")
OPTION = re.compile(r"(?<!\S)--[a-z][\w-]*")


def named_commands(text: str) -> list[tuple[str, str, set[str]]]:
    """(command, its first word after it, the options on its line) for each use."""
    return [(c, sub, set(OPTION.findall(rest))) for c, sub, rest in COMMAND.findall(code(text))]


def section(text: str, title: str) -> str:
    match = re.search(rf"^### {title}\n(.*?)(?=^#)", text, re.S | re.M)
    assert match, title
    return match.group(1)


def test_every_mgrecs_command_in_the_guide_exists() -> None:
    commands = cli_commands()
    named = named_commands(GUIDE.read_text())
    assert len(named) > 20
    for command, sub, options in named:
        assert command in commands, command
        if commands[command]:
            assert sub in commands[command], f"mgrecs {command} {sub}"
        assert options <= cli_options(command, sub), f"mgrecs {command} {sub} {options}"


def test_the_check_finds_a_command_that_does_not_exist() -> None:
    assert named_commands("run `mgrecs cache purge` then `mgrecs jobs --since 1h`") == [
        ("cache", "purge", set()),
        ("jobs", "", {"--since"}),
    ]
    assert "purge" not in cli_commands()["cache"]
    assert "--since" not in cli_options("jobs", "")


def test_each_symptom_has_commands_and_real_metrics() -> None:
    text = GUIDE.read_text()
    known = defined_metrics()
    for title in SYMPTOMS:
        body = section(text, title)
        assert named_commands(body), title
        metrics = metrics_in(body)
        assert metrics and metrics <= known, title
    assert metrics_in(text) <= known


def test_readme_links_the_guide() -> None:
    assert "(docs/operations.md)" in (REPO_ROOT / "README.md").read_text()
