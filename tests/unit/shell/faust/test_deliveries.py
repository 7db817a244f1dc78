"""The drain loop's delivery counts match the metric's documented paths."""

from __future__ import annotations

from pathlib import Path

from stream.shell.faust import DELIVERY_PATHS, deliveries


def test_the_drain_loop_counts_every_path_the_metric_documents() -> None:
    assert (
        set(deliveries)
        == set(DELIVERY_PATHS)
        == {"direct", "waited", "behind", "dropped", "resought", "gap", "suspended"}
    )
    catalogue = (Path(__file__).resolve().parents[4] / "docs" / "metrics.md").read_text()
    row = next(line for line in catalogue.splitlines() if "journey_consumer_deliveries" in line)
    assert all(f"`{path}`" in row for path in DELIVERY_PATHS)
