"""A faust-streaming upgrade is a decision: the upstream code every patch copies, replaces
or relies on is hashed here, and a change fails with the patch to review.

When one fails: read the patch module it names against the new upstream source (a copy
may need the upstream change merged in, a wrapper may rely on something that moved),
then record the new hash below and move ``PINNED_FAUST`` in stream/shell/faust/pinned.py.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest

import stream.shell.faust
import stream.shell.faust.patches

#: Per module of stream.shell.faust: the sha256 of ``inspect.getsource`` of each upstream
#: function it names in ``UPSTREAM`` (faust-streaming 0.15.3, mode-streaming 0.7.1,
#: aiokafka 0.14.0).
RECORDED: dict[str, dict[str, str]] = {
    "stream.shell.faust.partitions": {
        "faust.streams.current_event": (
            "3b821f1a78d86a58234dfe781fbf539775b00e66fdac9489c1c398a2d81d7e9d"
        ),
    },
    "stream.shell.faust.stores": {
        "faust.stores.rocksdb.Store._visible_items": (
            "545dc16a2b25e4a4c6ce4483ba808b7121b733ac32ecbdcbba78348248f816c2"
        ),
        "faust.stores.rocksdb.Store._db_for_partition": (
            "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f"
        ),
    },
    "stream.shell.faust.state_writers": {
        "faust.tables.base.Collection._on_changelog_sent": (
            "60122c86a120d82cffa95da4c22323e12d67fa82f3112f08ac7f8edde7c47826"
        ),
        "faust.tables.base.Collection.send_changelog": (
            "3dd3884e1b5fc0e1612bc688b83d9318a1805ddc49700d3b6b37bade73c3905d"
        ),
        "faust.stores.rocksdb.Store._set": (
            "4227e561e288d9413bf663a3a67940fd4976f5484e70e49445858ce4d400d26e"
        ),
        "faust.stores.rocksdb.Store._del": (
            "07f42ff3caefffddb002ba3c316120ee8a608a15021fa226fd8e9ba2635004a9"
        ),
        "faust.stores.rocksdb.Store._db_for_partition": (
            "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f"
        ),
        "faust.stores.rocksdb.Store.set_persisted_offset": (
            "b4c811926678346ebb8c40486dbc46d0fbac2bbeaa592384bd955112556acf45"
        ),
    },
    "stream.shell.faust.patches.fetch_wait": {
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer": (
            "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7"
        ),
        "aiokafka.consumer.consumer.AIOKafkaConsumer.start": (
            "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45"
        ),
    },
    "stream.shell.faust.patches.drain_loop": {
        "faust.transport.consumer.Consumer._drain_messages": (
            "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
        ),
    },
    "stream.shell.faust.patches.direct_delivery": {
        "faust.transport.conductor.Conductor._compile_message_handler": (
            "9fbc0538097aa4eca6113b99df8d17605ae72a6b5030482f041a183f4cc34df1"
        ),
        "faust.transport.conductor.ConductorCompiler.build": (
            "837cf521368c1ee4b22c235a2b137f665eca03d0e3e01b5ddedb65232ee73bf2"
        ),
    },
    "stream.shell.faust.patches.flow_resumes": {
        "mode.utils.queues.FlowControlEvent.resume": (
            "4dcdc1253fd0dcb40de18a3702503c01d21e9da7e5e55b122fb92615f27648d9"
        ),
        "mode.utils.queues.FlowControlEvent.clear": (
            "dda5e40d80288a8f4244cffdf3e7a648773579a72e64b40182bbbc2424752524"
        ),
    },
    "stream.shell.faust.patches.commit_guard": {
        "faust.transport.consumer.Consumer._new_offset": (
            "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0"
        ),
    },
    "stream.shell.faust.patches.bulk_restore": {
        "faust.tables.recovery.Recovery._build_offsets": (
            "27eec86be06cb51f66dfd2572be2f9b41acd22c3570239bb5c554bd94e59a1d6"
        ),
        "faust.tables.recovery.Recovery._restart_recovery": (
            "6bd8a8558a2dffe4c60b8150f23d721baa6b3d658367f911a3ad2187e20efc6f"
        ),
        "faust.stores.rocksdb.Store.persisted_offset": (
            "6f2e502fb86043a1cf0adca5c2fffb197579db01b31dbba3b0415aaacc35a2ed"
        ),
        "faust.stores.rocksdb.Store.set_persisted_offset": (
            "b4c811926678346ebb8c40486dbc46d0fbac2bbeaa592384bd955112556acf45"
        ),
        "faust.stores.rocksdb.Store.apply_changelog_batch": (
            "ea3344d369fc4ab5e3cdace30565691136035a463acb7b2551fdc0b8af71643b"
        ),
        "faust.stores.rocksdb.Store._db_for_partition": (
            "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f"
        ),
    },
    "stream.shell.faust.patches.restore_loop": {
        "faust.tables.recovery.Recovery._slurp_changelogs": (
            "7825c7e50f766d5ab0fd246b63420ea0dfcd732d005f1057cc9da656ff5d3967"
        ),
    },
    "stream.shell.faust.patches.idempotent_producer": {
        "faust.transport.drivers.aiokafka.Producer._settings_extra": (
            "a4c7bc41b63822236e4c9be1c49437d091f58c1b3a983eecabb7362a819aa8bd"
        ),
        "faust.transport.drivers.aiokafka.Producer._new_producer": (
            "e72355c3430ed02f5202c83e2f5ef7daf484f33aa40e62f98fe3adec3e18aa17"
        ),
    },
    "stream.shell.faust.patches.send_guard": {
        "faust.transport.drivers.aiokafka.Producer.send": (
            "0b5bd08f52e5e2a90ff6307dbfc3c97afb01cb2687835e8fe8486c5bcad02dc1"
        ),
    },
}

UPSTREAM_PACKAGES = ("faust.", "mode.", "aiokafka.")


def modules_of(package: Any) -> list[str]:
    """The names of every module under ``package``."""
    return [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def upstream_of(module_name: str) -> dict[str, Callable[..., Any]]:
    """The upstream functions a module of ours names, by their dotted name."""
    upstream = getattr(importlib.import_module(module_name), "UPSTREAM", ())
    return {f"{fn.__module__}.{fn.__qualname__}": fn for fn in upstream}


def sha256_of_source(function: Callable[..., Any]) -> str:
    """The sha256 of a function's source as ``inspect`` reads it from the installed file."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def test_every_patch_names_the_upstream_code_it_changes() -> None:
    patches = [
        name
        for name in modules_of(stream.shell.faust.patches)
        if name != "stream.shell.faust.patches"
    ]
    unnamed = [name for name in patches if not upstream_of(name)]
    assert not unnamed, f"give these patch modules an UPSTREAM tuple: {unnamed}"
    unrecorded = [name for name in modules_of(stream.shell.faust) if upstream_of(name)]
    assert sorted(unrecorded) == sorted(RECORDED), "RECORDED must list every UPSTREAM"


@pytest.mark.parametrize("module_name", sorted(RECORDED))
def test_the_upstream_source_of_each_patch_is_the_one_it_was_checked_against(
    module_name: str,
) -> None:
    upstream = upstream_of(module_name)
    outside = [name for name in upstream if not name.startswith(UPSTREAM_PACKAGES)]
    assert not outside, f"{module_name}.UPSTREAM must hold the originals, not ours: {outside}"
    found = {name: sha256_of_source(function) for name, function in upstream.items()}
    changed = {
        name: digest for name, digest in found.items() if RECORDED[module_name].get(name) != digest
    }
    assert found.keys() == RECORDED[module_name].keys() and not changed, (
        f"the upstream code {module_name} copies, replaces or relies on has changed: "
        f"{sorted(changed) or sorted(found.keys() ^ RECORDED[module_name].keys())}. "
        f"Review {module_name} against the new upstream source (a copy may need the "
        f"upstream change, a wrapper may rely on something that moved), then record the "
        f"new hashes in RECORDED of {__name__}: {changed} and move PINNED_FAUST in "
        f"stream/shell/faust/pinned.py if faust-streaming itself moved."
    )
