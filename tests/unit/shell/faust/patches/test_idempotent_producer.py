"""The worker's producer is idempotent, transactions or not."""

from __future__ import annotations

import faust

from stream.shell.faust.patches import idempotent_producer


def test_the_worker_producer_is_idempotent_with_acks_all() -> None:
    idempotent_producer.install()
    app = faust.App("idempotent-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    settings = app.producer._settings_extra()
    assert settings == {"acks": "all", "enable_idempotence": True}
