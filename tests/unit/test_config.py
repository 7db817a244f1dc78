"""The settings: one declaration each, read from the environment, documented, refused by name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from stream import cli
from stream.config import (
    SETTINGS,
    SETTINGS_DOC,
    Setting,
    Settings,
    SettingsError,
    load_settings,
    settings_table,
)

CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_come_from_the_declarations() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.broker == SETTINGS_DOC["JOURNEY_BROKER"][0]
    assert (settings.batch_size, settings.batch_within_s, settings.fast_drain) == (500, 0.05, True)
    assert (settings.clock_anchor_ms, settings.fault_send, settings.ssl_cafile) == (None,) * 3
    assert settings.topics.events("web") == "cjo.events.web"
    assert settings.topics.actions("call_center") == "cjo.actions.call_center"
    assert settings.broker_url == "kafka://127.0.0.1:9092"


def test_environment_overrides_defaults() -> None:
    settings = load_settings(
        {
            "JOURNEY_TOPIC_PREFIX": "t1.",
            "JOURNEY_PARTITIONS": "2",
            "JOURNEY_BROKER": "a:1,b:2",
            "JOURNEY_COMPRESSION": " ZSTD ",
            "JOURNEY_LOG_LEVEL": "WARNING",
            "JOURNEY_CLOCK_SPEED": "720",
            "JOURNEY_CLOCK_ANCHOR_MS": "1000",
            "JOURNEY_FAULT_SEND": "-customers-changelog:2",
        }
    )
    assert settings.topics.dlq == "t1.dlq" and settings.partitions == 2
    assert settings.broker_url == "kafka://a:1;kafka://b:2"
    assert (settings.compression_type, settings.log_level) == ("zstd", "warning")
    assert settings.fault_send == ("-customers-changelog", 2)
    clock = settings.clock()
    assert (clock.speed, clock.anchor_ms, clock.to_clock_ms(2000)) == (720, 1000, 721_000)


def test_contract_lists_every_public_topic_once() -> None:
    topics = load_settings({}).topics.contract
    assert len(topics) == len(set(topics)) == 6 + 7 + 3


def test_every_settings_field_is_declared_with_its_variable() -> None:
    declared = [f.metadata.get("setting") for f in fields(Settings)]
    assert None not in declared
    assert [s.env for s in SETTINGS] == list(SETTINGS_DOC)  # each variable once
    assert SETTINGS[-1].env == "JOURNEY_ENV_FILE"  # read before the settings, not a field


@pytest.mark.parametrize("declared", SETTINGS, ids=lambda s: s.env)
def test_every_setting_has_a_one_line_doc_and_a_default_it_accepts(declared: Setting) -> None:
    assert declared.env.startswith("JOURNEY_") and declared.env.upper() == declared.env
    doc = declared.doc
    assert doc.strip() and "\n" not in doc and "|" not in doc  # one line, one table cell
    declared.kind.parse(declared.env, declared.default)


def test_the_documented_table_is_the_one_the_declarations_make() -> None:
    """docs/configuration.md shows ``python -m stream.config``'s table, row for row."""
    generated = [row for row in settings_table().splitlines() if row.startswith("| `")]
    documented = [
        line for line in CONFIGURATION_DOC.read_text().splitlines() if line.startswith("| `")
    ]
    assert documented == generated, (
        "docs/configuration.md's table is out of date: paste `python -m stream.config`"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOURNEY_BATCH_SIZE", "abc", "expected a positive integer, got 'abc'"),
        ("JOURNEY_BATCH_SIZE", "0", "expected a positive integer, got '0'"),
        ("JOURNEY_PARTITIONS", "2.5", "expected a positive integer, got '2.5'"),
        ("JOURNEY_WEB_PORT", "70000", "expected a port number (1-65535), got '70000'"),
        ("JOURNEY_DECISIONS_KEPT", "-1", "expected an integer >= 0, got '-1'"),
        ("JOURNEY_BATCH_WITHIN_S", "soon", "expected a positive number, got 'soon'"),
        ("JOURNEY_CLOCK_SPEED", "0", "expected a positive number, got '0'"),
        ("JOURNEY_TIMER_TICK_S", "nan", "expected a positive number, got 'nan'"),
        ("JOURNEY_TIMER_HORIZON_S", "-1", "expected a number >= 0, got '-1'"),
        (
            "JOURNEY_CLOCK_ANCHOR_MS",
            "now",
            "expected epoch milliseconds (an integer >= 0), or empty, got 'now'",
        ),
        ("JOURNEY_FAST_DRAIN", "maybe", "expected true or false, got 'maybe'"),
        (
            "JOURNEY_COMPRESSION",
            "brotli",
            "expected one of none, gzip, snappy, lz4, zstd, got 'brotli'",
        ),
        (
            "JOURNEY_PROCESSING_GUARANTEE",
            "at_most_once",
            "expected one of at_least_once, exactly_once, got 'at_most_once'",
        ),
        (
            "JOURNEY_LOG_LEVEL",
            "loud",
            "expected one of debug, info, warning, error, critical, got 'loud'",
        ),
        ("JOURNEY_FAULT_SEND", "dlq:0", "expected <topic suffix>:<n >= 1>, or empty, got 'dlq:0'"),
        ("JOURNEY_BROKER", "", "expected a non-empty value, got ''"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_expected(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({name: value})
    assert str(refused.value) == f"{name}: {message}"


def test_flags_accept_true_and_false_words_and_refuse_anything_else() -> None:
    assert load_settings({"JOURNEY_FAST_DRAIN": "off"}).fast_drain is False
    assert load_settings({"JOURNEY_FAST_DRAIN": "Yes"}).fast_drain is True
    with pytest.raises(ValueError, match="JOURNEY_FAST_DRAIN"):
        load_settings({"JOURNEY_FAST_DRAIN": "maybe"})


@pytest.mark.parametrize("command", ["worker", "topics", "simulate", "customer"])
def test_a_bad_value_ends_a_command_with_one_line_naming_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEY_BATCH_SIZE", "abc")
    argv = [command, "c1"] if command == "customer" else [command]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"journey {command}: JOURNEY_BATCH_SIZE: expected a positive integer, got 'abc'\n"
    )


def test_rocksdb_memory_is_bounded_per_table_partition() -> None:
    settings = load_settings({"JOURNEY_ROCKSDB_MEMORY_MB": "64"})
    customers = settings.rocksdb_options("customers")
    assert customers == {
        "block_cache_size": 64 << 20,
        "write_buffer_size": 16 << 20,
        "max_write_buffer_number": 2,
    }
    assert settings.rocksdb_options("due")["block_cache_size"] == 8 << 20
    assert (
        load_settings({"JOURNEY_ROCKSDB_MEMORY_MB": "2"}).rocksdb_options("due")[
            "write_buffer_size"
        ]
        == 1 << 20
    )  # never below RocksDB's useful minimum
