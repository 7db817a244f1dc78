"""The drain loop's count of the messages it handed to the streams (or did not), by path.

Process-wide: every worker consumer of the process counts here. Read by the
``journey_consumer_deliveries_total`` metric (``Metrics.consumer_deliveries``).
"""

from __future__ import annotations

#: The paths ``journey_consumer_deliveries_total`` counts (see ``deliveries``).
DELIVERY_PATHS = ("direct", "waited", "behind", "dropped", "resought", "gap", "suspended")

#: Messages the worker's consumer handed to the streams, by path: ``direct`` (nothing could
#: block, the delivery was awaited inline) or ``waited`` (Faust's race against a
#: rebalance); ``behind`` counts those of them re-read behind the partition's read offset
#: and not yet acked (Faust would drop them), ``gap`` those after a confirmed hole;
#: ``dropped`` counts re-read records already acked, ``resought`` records that arrived past
#: a hole and made the partition seek back (not delivered), ``suspended`` waited
#: deliveries a rebalance interrupted (read again).
deliveries: dict[str, int] = dict.fromkeys(DELIVERY_PATHS, 0)
