"""The worker's policy holder: reload on change, keep the last good policy on a bad one."""

from __future__ import annotations

import os
import shutil

import pytest

from stream.core.decide import PolicyError
from stream.shell.policy_source import PolicySource
from tests.unit.core.decide.helpers import CATALOG, ROOT


def test_reload_if_changed_picks_up_an_edit_and_keeps_the_last_good(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    first = source.current.version
    assert not source.reload_if_changed()

    path.write_text(path.read_text().replace("value: 100", "value: 120"))
    os.utime(path, ns=(1, 1))  # a distinct mtime even within the clock's resolution
    assert source.reload_if_changed()
    second = source.current.version
    assert second != first

    path.write_text("format: 1\nname: broken\nactions: []\n")
    os.utime(path, ns=(2, 2))
    assert not source.reload_if_changed()
    assert source.current.version == second and source.failed_reloads == 1


def test_a_reload_with_a_misspelled_field_keeps_the_last_good_and_counts(tmp_path, caplog) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    good = source.current.version
    text = path.read_text()
    path.write_text(text.replace("customer.stage == 'awareness'", "customer.stag == 'awareness'"))
    os.utime(path, ns=(1, 1))
    assert not source.reload_if_changed()
    assert source.current.version == good and source.failed_reloads == 1
    assert "customer.stag: unknown field; did you mean customer.stage?" in caplog.text


def test_an_invalid_policy_at_start_is_refused(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("format: 1\nname: x\n")
    with pytest.raises(PolicyError, match="actions"):
        PolicySource(path, CATALOG)
