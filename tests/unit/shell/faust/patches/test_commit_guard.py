"""No commit over an owed offset (faust-streaming #606)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from intervaltree import IntervalTree

from stream.shell.faust.patches.commit_guard import faust_new_offset, new_offset


class CommitBook:
    """The offset bookkeeping of Faust's consumer that ``new_offset`` reads, for real."""

    def __init__(
        self, committed: int | None, acked: list[int], gaps: Iterable[tuple[int, int]] = ()
    ) -> None:
        self._committed_offset = defaultdict(lambda: None, {"tp": committed})
        self._acked = defaultdict(list, {"tp": sorted(acked)})
        self._acked_index = defaultdict(set, {"tp": set(acked)})
        self._gap: defaultdict[str, IntervalTree] = defaultdict(IntervalTree)
        for begin, end in gaps:
            self._gap["tp"].addi(begin, end)


def test_faust_commits_over_an_owed_offset_and_the_guard_does_not() -> None:
    # Offset 14 is committed (owed next) and was never acked; 15 and 16 were.
    assert faust_new_offset(CommitBook(14, [15, 16]), "tp") == 17  # 14 is lost
    assert new_offset(CommitBook(14, [15, 16]), "tp") is None


def test_the_guard_commits_a_run_that_starts_at_the_owed_offset_or_a_gap() -> None:
    assert new_offset(CommitBook(14, [14, 15, 17]), "tp") == 16
    assert new_offset(CommitBook(14, [15, 16], gaps=[(14, 15)]), "tp") == 17
    assert new_offset(CommitBook(None, [3, 4]), "tp") == 5  # nothing committed yet
    assert new_offset(CommitBook(14, []), "tp") is None
