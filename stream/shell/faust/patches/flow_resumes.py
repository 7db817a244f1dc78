"""Notice when flow control resumes: the stream queues were just cleared.

``resume`` of mode's ``FlowControlEvent`` clears every queue Faust's streams read from.
At the end of a rebalance Faust resumes after its seek to the committed offsets, so
records the fetcher delivered during that seek are dropped from the queues unacked while
the read offset has moved past them. The drain loop seeks again after each resume; this
module wraps one flow control's ``resume`` (an instance, not the class) to tell it.
"""

from __future__ import annotations

from typing import Any

from mode.utils.queues import FlowControlEvent

#: Wrapped per instance (``resume``), and what makes a resume lose records (``clear``).
UPSTREAM = (FlowControlEvent.resume, FlowControlEvent.clear)


class FlowResumes:
    """Whether flow control resumed (and so cleared the stream queues) since last asked."""

    def __init__(self) -> None:
        self.pending = False

    def pop(self) -> bool:
        """True once after each resume."""
        pending, self.pending = self.pending, False
        return pending


def watch_flow_resumes(flow_control: Any) -> FlowResumes:
    """The resumes of this flow control from now on (one watch per flow control)."""
    watch: FlowResumes | None = getattr(flow_control, "_journey_resumes", None)
    if watch is None:
        watch = FlowResumes()
        resume = flow_control.resume

        def resume_and_note() -> None:
            resume()
            watch.pending = True

        flow_control.resume = resume_and_note
        flow_control._journey_resumes = watch
    return watch
