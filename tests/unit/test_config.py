from pathlib import Path

import pytest

from stream.config import SETTINGS_DOC, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_come_from_the_settings_table() -> None:
    settings = load_settings({})
    assert settings.broker == SETTINGS_DOC["JOURNEY_BROKER"][0]
    assert settings.topics.events("web") == "cjo.events.web"
    assert settings.topics.actions("call_center") == "cjo.actions.call_center"
    assert settings.broker_url == "kafka://127.0.0.1:9092"


def test_environment_overrides_defaults() -> None:
    settings = load_settings(
        {"JOURNEY_TOPIC_PREFIX": "t1.", "JOURNEY_PARTITIONS": "2", "JOURNEY_BROKER": "a:1,b:2"}
    )
    assert settings.topics.dlq == "t1.dlq" and settings.partitions == 2
    assert settings.broker_url == "kafka://a:1;kafka://b:2"


def test_contract_lists_every_public_topic_once() -> None:
    topics = load_settings({}).topics.contract
    assert len(topics) == len(set(topics)) == 5 + 6 + 3


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = README.read_text()
    for name, (default, _meaning) in SETTINGS_DOC.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` ")), None)
        assert row is not None, f"{name} missing from the README configuration table"
        assert (f"`{default}`" in row) if default else "(empty)" in row, row


def test_flags_accept_true_and_false_words_and_refuse_anything_else() -> None:
    assert load_settings({"JOURNEY_FAST_DRAIN": "off"}).fast_drain is False
    assert load_settings({"JOURNEY_FAST_DRAIN": "Yes"}).fast_drain is True
    with pytest.raises(ValueError, match="JOURNEY_FAST_DRAIN"):
        load_settings({"JOURNEY_FAST_DRAIN": "maybe"})


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
