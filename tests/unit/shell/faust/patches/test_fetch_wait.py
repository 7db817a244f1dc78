"""The worker consumer's fetch wait is lowered from Faust's fixed 1,500 ms."""

from __future__ import annotations

import faust

from stream.shell.faust.patches import fetch_wait


async def test_worker_consumer_fetch_wait_is_lowered_from_fausts_fixed_value() -> None:
    app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    thread = app.consumer._thread
    fetch_wait.install(40)
    assert thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == 40
    fetch_wait.install(50)
    assert thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == 50
