"""The settings file of the `journey` commands (JOURNEY_ENV_FILE), as `make demo` writes it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stream import cli, config
from stream.config import (
    SettingsError,
    environment_with_file,
    load_settings,
    read_env_file,
    write_env_file,
)

VALUES = {
    "JOURNEY_TOPIC_PREFIX": "demo7.",
    "JOURNEY_API_TOKEN": "t0k'en $HOME #1",
    "JOURNEY_WEB_PORT": "6099",
}


def test_a_written_file_reads_back_exactly_and_only_its_owner_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "journey.env"
    path.write_text("stale")
    path.chmod(0o644)
    write_env_file(path, VALUES, comment="written by a test\nsecond line")
    assert read_env_file(path) == VALUES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("# written by a test\n# second line\nexport ")


def test_the_environment_wins_over_the_named_file(tmp_path: Path) -> None:
    path = tmp_path / "journey.env"
    write_env_file(path, VALUES)
    environ = {"JOURNEY_ENV_FILE": str(path), "JOURNEY_WEB_PORT": "7000"}
    merged, used = environment_with_file(environ)
    assert used == path
    settings = load_settings(merged)
    assert (settings.topics.prefix, settings.api_token) == ("demo7.", VALUES["JOURNEY_API_TOKEN"])
    assert settings.web_port == 7000


def test_the_local_demo_file_is_read_only_when_no_prefix_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DEFAULT_ENV_FILE", Path(".run/demo/journey.env"))
    monkeypatch.chdir(tmp_path)
    assert environment_with_file({}) == ({}, None)  # no demo has run here
    (tmp_path / ".run" / "demo").mkdir(parents=True)
    write_env_file(tmp_path / ".run" / "demo" / "journey.env", VALUES)
    merged, used = environment_with_file({"JOURNEY_BROKER": "b:1"})
    assert used == Path(".run/demo/journey.env")
    assert merged == {**VALUES, "JOURNEY_BROKER": "b:1"}
    assert environment_with_file({"JOURNEY_TOPIC_PREFIX": "cjo."}) == (
        {"JOURNEY_TOPIC_PREFIX": "cjo."},
        None,
    )
    assert environment_with_file({"JOURNEY_ENV_FILE": ""}) == ({"JOURNEY_ENV_FILE": ""}, None)


def test_a_named_file_that_cannot_be_read_is_refused_with_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^JOURNEY_ENV_FILE: cannot read .*missing\.env"):
        environment_with_file({"JOURNEY_ENV_FILE": str(tmp_path / "missing.env")})


@pytest.mark.parametrize(
    "line",
    ["PATH=/tmp/evil", "export JOURNEY_API_TOKEN", "JOURNEY_A=1 JOURNEY_B=2", "JOURNEY_A='open"],
)
def test_a_bad_line_is_refused_with_its_number_and_never_shown(tmp_path: Path, line: str) -> None:
    path = tmp_path / "journey.env"
    path.write_text(f"# a comment\n\nexport JOURNEY_WEB_PORT=6099\n{line}\n")
    with pytest.raises(SettingsError, match=r"line 4") as refused:
        read_env_file(path)
    assert line not in str(refused.value)


def test_a_bad_value_in_the_file_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journey.env"
    write_env_file(path, {**VALUES, "JOURNEY_PARTITIONS": "four"})
    for name in config.SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEY_ENV_FILE", str(path))
    with pytest.raises(SystemExit) as exited:
        cli.main(["topics"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"journey: settings from {path} (JOURNEY_* variables set win)",
        "journey topics: JOURNEY_PARTITIONS: expected a positive integer, got 'four'",
    ]
