"""A flow-control resume (which clears the stream queues) is noticed by the drain loop."""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from stream.shell.faust.patches.flow_resumes import watch_flow_resumes


def test_a_flow_control_resume_is_noted_once_and_still_resumes() -> None:
    flow = FlowControlEvent()
    queue: FlowControlQueue[str] = FlowControlQueue(
        maxsize=10, flow_control=flow, clear_on_resume=True
    )
    queue.put_nowait("delivered before the resume")
    resumes = watch_flow_resumes(flow)
    assert watch_flow_resumes(flow) is resumes  # wrapped once
    assert resumes.pop() is False
    flow.resume()
    assert flow.is_active() and queue.empty()  # what makes the drain loop read again
    assert resumes.pop() is True and resumes.pop() is False
