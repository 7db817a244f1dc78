"""No commit over an owed offset: Faust's ``Consumer._new_offset`` with a missing check.

Faust commits the first run of consecutive acked offsets. Its check that the run starts
at the committed offset is off by one (faust-streaming #606): with offset C committed and
never acked, acks from C + 1 on commit over C, and the record at C is lost. Here nothing
is committed until C itself is acked or a confirmed gap. Part of the drain loop's
continuity: the loop re-reads what was skipped, this keeps a commit from passing it.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer as FaustConsumer

from stream.shell.faust.pinned import require_pinned_faust

faust_new_offset = FaustConsumer._new_offset

#: Wrapped.
UPSTREAM = (faust_new_offset,)


def new_offset(self: Any, tp: Any) -> int | None:
    """Faust's next commit offset for ``tp``, refused (None) while the committed one is owed."""
    committed = self._committed_offset[tp]
    if (
        committed is not None
        and self._acked[tp]
        and committed not in self._acked_index[tp]
        and not self._gap[tp].overlaps_point(committed)
    ):
        return None
    result: int | None = faust_new_offset(self, tp)
    return result


def install() -> None:
    """Use ``new_offset`` for every consumer's commits (once per process)."""
    require_pinned_faust(__name__)
    if FaustConsumer._new_offset is not new_offset:
        FaustConsumer._new_offset = new_offset  # type: ignore[method-assign]
