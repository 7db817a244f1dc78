"""Every setting of Journey Stream, read once from the environment and passed down.

The README's configuration table is generated from ``SETTINGS_DOC`` below, so the
names, defaults and meanings live in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stream.shell.clock import Clock, clock_from

CHANNELS_IN: tuple[str, ...] = ("web", "app", "email", "store", "call_center")
CHANNELS_OUT: tuple[str, ...] = ("email", "sms", "push", "web", "call_center", "store")


@dataclass(frozen=True, slots=True)
class Topics:
    """Names of every topic in the contract, derived from one prefix."""

    prefix: str

    def events(self, channel: str) -> str:
        """Ingress topic of one channel, e.g. ``cjo.events.web``."""
        return f"{self.prefix}events.{channel}"

    def actions(self, channel: str) -> str:
        """Action topic read by one channel's sender, e.g. ``cjo.actions.push``."""
        return f"{self.prefix}actions.{channel}"

    @property
    def all_events(self) -> list[str]:
        """All ingress topics."""
        return [self.events(c) for c in CHANNELS_IN]

    @property
    def all_actions(self) -> list[str]:
        """All action topics."""
        return [self.actions(c) for c in CHANNELS_OUT]

    @property
    def outcomes(self) -> str:
        """Outcomes reported by the channel senders."""
        return f"{self.prefix}outcomes"

    @property
    def decisions(self) -> str:
        """One explain record per decision."""
        return f"{self.prefix}decisions"

    @property
    def dlq(self) -> str:
        """Rejected input with its reason."""
        return f"{self.prefix}dlq"

    @property
    def identity_events(self) -> str:
        """Internal: validated events and identity links, keyed by identifier token."""
        return f"{self.prefix}internal.identity-events"

    @property
    def erasures(self) -> str:
        """Internal: one record per erased customer (the audit trail of `journey forget`)."""
        return f"{self.prefix}internal.erasures"

    @property
    def customer_events(self) -> str:
        """Internal: validated events re-keyed by customer id (co-partitioned with state)."""
        return f"{self.prefix}internal.customer-events"

    @property
    def learning(self) -> str:
        """Internal: counts for the learned model (trials, successes, exposures), by action."""
        return f"{self.prefix}internal.learning"

    @property
    def model(self) -> str:
        """Internal, compacted: the latest learned row of every action, read by every worker."""
        return f"{self.prefix}internal.model"

    @property
    def contract(self) -> list[str]:
        """Every public topic of the contract."""
        return [*self.all_events, *self.all_actions, self.outcomes, self.decisions, self.dlq]


# name -> (default, meaning). Defaults are strings, as they would come from the environment.
SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "JOURNEY_BROKER": ("127.0.0.1:9092", "Kafka bootstrap servers (host:port, comma separated)"),
    "JOURNEY_APP_ID": ("journey-stream", "Faust app id: consumer group and internal topic prefix"),
    "JOURNEY_TOPIC_PREFIX": ("cjo.", "prefix of every contract topic"),
    "JOURNEY_PARTITIONS": ("4", "partitions of the topics the worker creates"),
    "JOURNEY_REPLICATION": ("1", "replication factor of the topics the worker creates"),
    "JOURNEY_DATA_DIR": (".run/worker", "local state directory (RocksDB tables)"),
    "JOURNEY_STORE": ("rocksdb://", "table store URL (`rocksdb://`; `memory://` for tests only)"),
    "JOURNEY_WEB_HOST": ("127.0.0.1", "bind address of the worker web server (/metrics, /ready)"),
    "JOURNEY_WEB_PORT": ("6066", "port of the worker web server"),
    "JOURNEY_LOG_LEVEL": ("info", "worker log level"),
    "JOURNEY_MAX_EVENT_BYTES": ("65536", "larger input messages go to the DLQ as `too_large`"),
    "JOURNEY_DEDUPE_WINDOW": ("256", "event ids remembered per customer to drop duplicates"),
    "JOURNEY_RECENT_EVENTS": ("50", "recent events kept per customer"),
    "JOURNEY_HASH_SALT": ("", "salt for SHA-256 of emails and phone numbers"),
    "JOURNEY_DEFAULT_REGION": ("US", "region for phone numbers without a country code"),
    "JOURNEY_BATCH_SIZE": ("500", "events per micro-batch in each agent"),
    "JOURNEY_BATCH_WITHIN_S": ("0.05", "longest wait (s) to fill a micro-batch"),
    "JOURNEY_SESSION_TIMEOUT_S": ("30", "consumer session timeout (s); short in tests"),
    "JOURNEY_POLICY_FILE": (
        "policies/default.yaml",
        "decision policy (YAML); reloaded on SIGHUP or change",
    ),
    "JOURNEY_POLICY_POLL_S": ("2", "how often (s) the worker checks the policy file for changes"),
    "JOURNEY_CLOCK_SPEED": (
        "1",
        "processing clock speed-up (demos and tests: 720 makes a day pass in 2 minutes)",
    ),
    "JOURNEY_CLOCK_ANCHOR_MS": (
        "",
        "epoch ms where a sped-up clock equals the wall clock (default: process start); "
        "share it across the processes of one run",
    ),
    "JOURNEY_CLOCK_START_MS": (
        "",
        "the clock's time (epoch ms) at the anchor, to pin it to a chosen moment "
        "(default: the anchor itself)",
    ),
    "JOURNEY_FETCH_MAX_WAIT_MS": (
        "50",
        "longest a consumer fetch waits for data (Faust's fixed 1500 adds up to 1.5 s latency)",
    ),
    "JOURNEY_TIMER_TICK_S": ("0.1", "how often (real s) the scheduler looks for due timers"),
    "JOURNEY_TIMER_HORIZON_S": (
        "3600",
        "deadlines within this many clock seconds are kept in memory; later ones stay on disk",
    ),
    "JOURNEY_LAG_INTERVAL_S": ("5", "how often (s) the worker measures its consumer lag"),
    "JOURNEY_API_TOKEN": (
        "",
        "bearer token every API call must carry (all but /metrics, /live, /ready); "
        "empty: the API refuses every call",
    ),
    "JOURNEY_ADVERTISED_URL": (
        "",
        "URL other workers reach this one at, for routing API calls to a key's owner "
        "(default: http://<JOURNEY_WEB_HOST>:<JOURNEY_WEB_PORT>)",
    ),
    "JOURNEY_DECISIONS_KEPT": ("20", "latest explain records kept per customer for the API"),
    "JOURNEY_GROUP_INSTANCE_ID": (
        "",
        "static group membership id, stable across restarts (a StatefulSet pod name); "
        "empty: dynamic membership",
    ),
    "JOURNEY_ROCKSDB_MEMORY_MB": (
        "64",
        "RocksDB memory per partition of the customers table: block cache, plus write "
        "buffers of a quarter of it (two at most); the other tables an eighth of that",
    ),
    "JOURNEY_FAST_DRAIN": (
        "true",
        "deliver consumed messages to the streams without Faust's per-message task race "
        "when nothing can block (faust-streaming 0.15.3 only; `false` keeps Faust's loop)",
    ),
}


def parse_flag(name: str, value: str) -> bool:
    """A true/false setting; anything else is refused with the setting's name."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, SETTINGS_DOC[name][0])


@dataclass(frozen=True, slots=True)
class Settings:
    """The worker's whole configuration."""

    broker: str
    app_id: str
    topics: Topics
    partitions: int
    replication: int
    data_dir: Path
    store: str
    web_host: str
    web_port: int
    log_level: str
    max_event_bytes: int
    dedupe_window: int
    recent_events: int
    hash_salt: str
    default_region: str
    batch_size: int
    batch_within_s: float
    session_timeout_s: float
    policy_file: Path
    policy_poll_s: float
    clock_speed: float = 1.0
    clock_anchor_ms: int | None = None
    clock_start_ms: int | None = None
    timer_tick_s: float = 0.1
    fetch_max_wait_ms: int = 50
    timer_horizon_s: float = 3600.0
    lag_interval_s: float = 5.0
    group_instance_id: str = ""
    api_token: str = ""
    advertised_url: str = ""
    decisions_kept: int = 20
    fast_drain: bool = True
    rocksdb_memory_mb: int = 64

    def rocksdb_options(self, table: str) -> dict[str, int]:
        """Faust's RocksDB options for one table's per-partition databases.

        Faust's defaults (a 2 GiB block cache and three 64 MiB write buffers per database)
        would let six tables of four partitions grow past 5 GiB; the customers table
        gets ``rocksdb_memory_mb`` of block cache and the small tables an eighth of it.
        """
        budget = self.rocksdb_memory_mb * 1024 * 1024
        if table != "customers":
            budget //= 8
        return {
            "block_cache_size": budget,
            "write_buffer_size": max(1024 * 1024, budget // 4),
            "max_write_buffer_number": 2,
        }

    @property
    def web_url(self) -> str:
        """The URL other workers reach this worker's web server at."""
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    def clock(self) -> Clock:
        """The processing clock these settings describe."""
        return clock_from(self.clock_speed, self.clock_anchor_ms, self.clock_start_ms)

    @property
    def broker_url(self) -> str:
        """Broker list in Faust's URL form."""
        return ";".join(f"kafka://{b.strip()}" for b in self.broker.split(","))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (or the given mapping), defaults filled in."""
    source = os.environ if env is None else env

    def get(name: str) -> str:
        return _get(source, name)

    return Settings(
        broker=get("JOURNEY_BROKER"),
        app_id=get("JOURNEY_APP_ID"),
        topics=Topics(get("JOURNEY_TOPIC_PREFIX")),
        partitions=int(get("JOURNEY_PARTITIONS")),
        replication=int(get("JOURNEY_REPLICATION")),
        data_dir=Path(get("JOURNEY_DATA_DIR")),
        store=get("JOURNEY_STORE"),
        web_host=get("JOURNEY_WEB_HOST"),
        web_port=int(get("JOURNEY_WEB_PORT")),
        log_level=get("JOURNEY_LOG_LEVEL"),
        max_event_bytes=int(get("JOURNEY_MAX_EVENT_BYTES")),
        dedupe_window=int(get("JOURNEY_DEDUPE_WINDOW")),
        recent_events=int(get("JOURNEY_RECENT_EVENTS")),
        hash_salt=get("JOURNEY_HASH_SALT"),
        default_region=get("JOURNEY_DEFAULT_REGION"),
        batch_size=int(get("JOURNEY_BATCH_SIZE")),
        batch_within_s=float(get("JOURNEY_BATCH_WITHIN_S")),
        session_timeout_s=float(get("JOURNEY_SESSION_TIMEOUT_S")),
        policy_file=Path(get("JOURNEY_POLICY_FILE")),
        policy_poll_s=float(get("JOURNEY_POLICY_POLL_S")),
        clock_speed=float(get("JOURNEY_CLOCK_SPEED")),
        clock_anchor_ms=int(get("JOURNEY_CLOCK_ANCHOR_MS"))
        if get("JOURNEY_CLOCK_ANCHOR_MS")
        else None,
        clock_start_ms=int(get("JOURNEY_CLOCK_START_MS"))
        if get("JOURNEY_CLOCK_START_MS")
        else None,
        timer_tick_s=float(get("JOURNEY_TIMER_TICK_S")),
        fetch_max_wait_ms=int(get("JOURNEY_FETCH_MAX_WAIT_MS")),
        timer_horizon_s=float(get("JOURNEY_TIMER_HORIZON_S")),
        lag_interval_s=float(get("JOURNEY_LAG_INTERVAL_S")),
        group_instance_id=get("JOURNEY_GROUP_INSTANCE_ID"),
        api_token=get("JOURNEY_API_TOKEN"),
        advertised_url=get("JOURNEY_ADVERTISED_URL"),
        decisions_kept=int(get("JOURNEY_DECISIONS_KEPT")),
        fast_drain=parse_flag("JOURNEY_FAST_DRAIN", get("JOURNEY_FAST_DRAIN")),
        rocksdb_memory_mb=int(get("JOURNEY_ROCKSDB_MEMORY_MB")),
    )
