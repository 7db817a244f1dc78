"""Baseline B of bench/pipeline.py: a bare Faust agent that forwards each event (the floor).

The same faust-streaming version and settings the worker uses (raw bytes, micro-batches
of ``take_events(500, 0.05)``, the lowered fetch wait), and nothing else: no decode, no
state, one output record per input record.

    FLOOR_APP_ID=... FLOOR_PREFIX=... FLOOR_OUT=... FLOOR_PORT=... \\
        .venv/bin/python bench/faust_floor.py worker -l info
"""

from __future__ import annotations

import os

import faust
from faust.types import StreamT

from stream.config import CHANNELS_IN
from stream.shell.faust.patches import fetch_wait

fetch_wait.install(50)
PREFIX = os.environ["FLOOR_PREFIX"]
OUT = os.environ["FLOOR_OUT"]

app = faust.App(
    os.environ["FLOOR_APP_ID"],
    broker=os.environ.get("FLOOR_BROKER", "kafka://127.0.0.1:9092"),
    key_serializer="raw",
    value_serializer="raw",
    web_host="127.0.0.1",
    web_bind="127.0.0.1",
    web_port=int(os.environ["FLOOR_PORT"]),
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    stream_buffer_maxsize=8192,
    autodiscover=False,
    store="memory://",
    datadir=os.environ.get("FLOOR_DATA_DIR", "/tmp/faust-floor"),
)
events = app.topic(*[f"{PREFIX}events.{channel}" for channel in CHANNELS_IN])


@app.agent(events, name="forward")
async def forward(stream: StreamT) -> None:
    async for batch in stream.take_events(500, 0.05):
        for event in batch:
            message = event.message
            await app.producer.send(OUT, message.key, message.value, None, None, None)


if __name__ == "__main__":
    app.main()
