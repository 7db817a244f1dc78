"""An idempotent producer for the worker, transactions or not.

Faust turns aiokafka's ``enable_idempotence`` on only inside transactions. With it, a
batch the producer retries after a broker restart or a lost response is written once: no
duplicate changelog, action or explain records from retries. It needs ``acks=all``, which
the worker sets anyway.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import Producer

from stream.shell.faust.pinned import require_pinned_faust

faust_settings_extra = Producer._settings_extra

#: Replaced (``_settings_extra``), and its caller (``_new_producer`` passes it to aiokafka).
UPSTREAM = (faust_settings_extra, Producer._new_producer)


def settings_extra(self: Any) -> dict[str, Any]:
    """The producer settings Faust adds to its defaults: idempotence, always."""
    return {"acks": "all", "enable_idempotence": True}


def install() -> None:
    """Make every worker producer created from now on idempotent (process-wide)."""
    require_pinned_faust(__name__)
    Producer._settings_extra = settings_extra  # type: ignore[method-assign]
