"""Every setting of Journey Stream, read once from the environment and passed down.

Each setting is declared once, as a field of ``Settings``: its environment variable, the
default as the environment would spell it, the kind of value it takes and one line of
documentation. ``load_settings`` reads the environment from these declarations, and
``settings_table()`` (``python -m stream.config``) prints the table of
docs/configuration.md from them. A bad value is a ``SettingsError`` naming the variable and
what it expected, e.g. ``JOURNEY_BATCH_SIZE: expected a positive integer, got 'abc'``.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from stream.core.events import DecodeOptions
    from stream.core.schemas import SchemaCatalog

T = TypeVar("T")

CHANNELS_IN: tuple[str, ...] = ("web", "app", "email", "store", "call_center", "social")
CHANNELS_OUT: tuple[str, ...] = (
    "email",
    "sms",
    "push",
    "web",
    "call_center",
    "store",
    "social",
)
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
PROCESSING_GUARANTEES: tuple[str, ...] = ("at_least_once", "exactly_once")
COMPRESSION_CODECS: tuple[str, ...] = ("none", "gzip", "snappy", "lz4", "zstd")
SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ValueError):
    """A setting with a value the worker cannot run with; the message names the setting."""


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
    def policies(self) -> str:
        """Internal, compacted: the text of every policy a worker ran, by version (the
        journey versions a customer's run may be pinned to)."""
        return f"{self.prefix}internal.policies"

    @property
    def contract(self) -> list[str]:
        """Every public topic of the contract."""
        return [*self.all_events, *self.all_actions, self.outcomes, self.decisions, self.dlq]


@dataclass(frozen=True, slots=True)
class Clock:
    """Processing-time clock in epoch milliseconds: wall time, or wall time sped up.

    ``now = start + (wall - anchor) * speed``, ``start`` defaulting to ``anchor``: at speed 1
    without a start it is the wall clock; at 720 one real second is twelve clock minutes, so
    a two-day wait passes in four minutes. A ``start`` pins the clock to a chosen moment (the
    tests run at 11:00 in Paris whatever the hour). Every process of one run (workers,
    simulator, tests) must share the settings so they agree on the time, and they must not
    change across restarts or time would jump back.
    """

    speed: float = 1.0
    anchor_ms: int = 0
    start_ms: int | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"clock speed must be positive, got {self.speed}")

    def now_ms(self) -> int:
        """The current time on this clock."""
        wall_ms = time.time() * 1000
        if self.speed == 1.0 and self.start_ms is None:
            return int(wall_ms)
        return int(self.to_clock_ms(wall_ms))

    def to_clock_ms(self, wall_ms: float) -> float:
        """The clock time at a given wall-clock time (e.g. a Kafka record timestamp)."""
        start = self.anchor_ms if self.start_ms is None else self.start_ms
        return start + (wall_ms - self.anchor_ms) * self.speed

    def real_seconds(self, clock_ms: float) -> float:
        """How many real seconds a span of ``clock_ms`` takes on this clock."""
        return clock_ms / self.speed / 1000


def clock_from(speed: float, anchor_ms: int | None, start_ms: int | None = None) -> Clock:
    """The clock for these settings; without an anchor the clock is anchored now."""
    if anchor_ms is None:
        anchor_ms = int(time.time() * 1000)
    return Clock(speed, anchor_ms, start_ms)


# --- kinds of values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """How a setting's text becomes its value; ``expected`` is what the error message asks
    for when ``convert`` refuses the text (by raising ValueError)."""

    expected: str
    convert: Callable[[str], T]

    def parse(self, name: str, text: str) -> T:
        """The value of ``text``; a SettingsError naming ``name`` if it is not one."""
        try:
            return self.convert(text)
        except ValueError:
            raise SettingsError(f"{name}: expected {self.expected}, got {text!r}") from None


def _accepted(convert: Callable[[str], T], accept: Callable[[T], bool]) -> Callable[[str], T]:
    def checked(text: str) -> T:
        value = convert(text)
        if not accept(value):
            raise ValueError(text)
        return value

    return checked


def _optional(kind: Kind[T]) -> Kind[T | None]:
    """``kind``, or None for an empty value."""
    return Kind(f"{kind.expected}, or empty", lambda text: kind.convert(text) if text else None)


def _choice(choices: tuple[str, ...], normalize: Callable[[str], str] = str.lower) -> Kind[str]:
    """One of ``choices``, compared after ``normalize`` (case and surrounding blanks)."""
    return Kind(
        f"one of {', '.join(choices)}",
        _accepted(lambda text: normalize(text.strip()), lambda value: value in choices),
    )


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _fault_send(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    suffix, _, nth = text.rpartition(":")
    if not (suffix and nth.isdigit() and int(nth) >= 1):
        raise ValueError(text)
    return suffix, int(nth)


_ORIGIN = re.compile(r"https?://[^/\s,]+")


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    if any(origin != "*" and not _ORIGIN.fullmatch(origin) for origin in origins):
        raise ValueError(text)
    return origins


TEXT = Kind("text", str)
REQUIRED = Kind("a non-empty value", _accepted(str, lambda text: bool(text.strip())))
PATH = Kind("a path", Path)
FILE = Kind("a file path, or empty", lambda text: Path(text) if text else None)
TOPIC_PREFIX = Kind("a topic prefix", Topics)
POSITIVE_INT = Kind("a positive integer", _accepted(int, lambda n: n > 0))
COUNT = Kind("an integer >= 0", _accepted(int, lambda n: n >= 0))
PORT = Kind("a port number (1-65535)", _accepted(int, lambda n: 1 <= n <= 65535))
EPOCH_MS = _optional(Kind("epoch milliseconds (an integer >= 0)", COUNT.convert))
POSITIVE = Kind("a positive number", _accepted(float, lambda x: 0 < x < math.inf))
NON_NEGATIVE = Kind("a number >= 0", _accepted(float, lambda x: 0 <= x < math.inf))
FLAG = Kind("true or false", _flag)
FAULT_SEND = Kind("<topic suffix>:<n >= 1>, or empty", _fault_send)
ORIGINS = Kind("origins (scheme://host[:port]) separated by commas, or *", _origins)


# --- the declarations ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, default (as the environment spells it), kind and
    one line of documentation."""

    env: str
    default: str
    kind: Kind[Any]
    doc: str

    def read(self, environ: Mapping[str, str]) -> Any:
        """The value ``environ`` gives this setting, its default if unset."""
        return self.kind.parse(self.env, environ.get(self.env, self.default))


def setting(env: str, default: str, kind: Kind[T], doc: str, *, secret: bool = False) -> T:
    """A ``Settings`` field read from ``env``; a secret is kept out of the repr."""
    declared = Setting(env, default, kind, doc)
    return field(default=kind.parse(env, default), repr=not secret, metadata={"setting": declared})


@dataclass(frozen=True, slots=True)
class Settings:
    """The worker's whole configuration, one field per environment variable (in the order
    of docs/configuration.md)."""

    broker: str = setting(
        "JOURNEY_BROKER",
        "127.0.0.1:9092",
        REQUIRED,
        "Kafka bootstrap servers (host:port, comma separated)",
    )
    app_id: str = setting(
        "JOURNEY_APP_ID",
        "journey-stream",
        REQUIRED,
        "Faust app id: consumer group and internal topic prefix",
    )
    topics: Topics = setting(
        "JOURNEY_TOPIC_PREFIX", "cjo.", TOPIC_PREFIX, "prefix of every contract topic"
    )
    partitions: int = setting(
        "JOURNEY_PARTITIONS", "4", POSITIVE_INT, "partitions of the topics the worker creates"
    )
    replication: int = setting(
        "JOURNEY_REPLICATION",
        "1",
        POSITIVE_INT,
        "replication factor of the topics the worker creates",
    )
    data_dir: Path = setting(
        "JOURNEY_DATA_DIR", ".run/worker", PATH, "local state directory (RocksDB tables)"
    )
    store: str = setting(
        "JOURNEY_STORE",
        "rocksdb://",
        REQUIRED,
        "table store URL (`memory://` only for experiments: state is then rebuilt from the "
        "changelog at every start)",
    )
    web_host: str = setting(
        "JOURNEY_WEB_HOST", "127.0.0.1", TEXT, "bind address of the worker web server"
    )
    web_port: int = setting(
        "JOURNEY_WEB_PORT",
        "6066",
        PORT,
        "port of the worker web server (`/metrics`, `/ready`, `/customers/{id}`)",
    )
    log_level: str = setting("JOURNEY_LOG_LEVEL", "info", _choice(LOG_LEVELS), "worker log level")
    max_event_bytes: int = setting(
        "JOURNEY_MAX_EVENT_BYTES",
        "65536",
        POSITIVE_INT,
        "larger input messages go to the DLQ as `too_large`",
    )
    dedupe_window: int = setting(
        "JOURNEY_DEDUPE_WINDOW",
        "256",
        POSITIVE_INT,
        "event ids remembered per customer to drop duplicates",
    )
    recent_events: int = setting(
        "JOURNEY_RECENT_EVENTS", "50", POSITIVE_INT, "recent events kept per customer"
    )
    hash_salt: str = setting(
        "JOURNEY_HASH_SALT",
        "",
        TEXT,
        "salt for SHA-256 of emails, phone numbers and social handles",
    )
    default_region: str = setting(
        "JOURNEY_DEFAULT_REGION",
        "US",
        TEXT,
        "region for phone numbers written without a country code",
    )
    batch_size: int = setting(
        "JOURNEY_BATCH_SIZE", "500", POSITIVE_INT, "events per micro-batch in each agent"
    )
    batch_within_s: float = setting(
        "JOURNEY_BATCH_WITHIN_S", "0.05", POSITIVE, "longest wait (s) to fill a micro-batch"
    )
    session_timeout_s: float = setting(
        "JOURNEY_SESSION_TIMEOUT_S",
        "30",
        POSITIVE,
        "consumer session timeout (s); the tests use 6",
    )
    policy_file: Path = setting(
        "JOURNEY_POLICY_FILE",
        "policies/default.yaml",
        PATH,
        "decision policy (YAML); reloaded on SIGHUP or when the file changes",
    )
    policy_poll_s: float = setting(
        "JOURNEY_POLICY_POLL_S",
        "2",
        POSITIVE,
        "how often (s) the worker checks the policy file for changes",
    )
    clock_speed: float = setting(
        "JOURNEY_CLOCK_SPEED",
        "1",
        POSITIVE,
        "processing clock speed-up (demos and tests: 720 makes a day pass in 2 minutes)",
    )
    clock_anchor_ms: int | None = setting(
        "JOURNEY_CLOCK_ANCHOR_MS",
        "",
        EPOCH_MS,
        "epoch ms where a sped-up clock equals the wall clock (default: process start); "
        "share it across the processes of one run",
    )
    clock_start_ms: int | None = setting(
        "JOURNEY_CLOCK_START_MS",
        "",
        EPOCH_MS,
        "the clock's time (epoch ms) at the anchor, to pin it to a chosen moment "
        "(default: the anchor itself)",
    )
    fetch_max_wait_ms: int = setting(
        "JOURNEY_FETCH_MAX_WAIT_MS",
        "50",
        COUNT,
        "longest a consumer fetch waits for data (Faust's fixed 1500 adds up to 1.5 s latency)",
    )
    timer_tick_s: float = setting(
        "JOURNEY_TIMER_TICK_S",
        "0.1",
        POSITIVE,
        "how often (real s) the scheduler looks for due timers",
    )
    timer_horizon_s: float = setting(
        "JOURNEY_TIMER_HORIZON_S",
        "3600",
        NON_NEGATIVE,
        "deadlines within this many clock seconds are kept in memory; later ones stay on disk",
    )
    lag_interval_s: float = setting(
        "JOURNEY_LAG_INTERVAL_S",
        "5",
        POSITIVE,
        "how often (s) the worker measures its consumer lag",
    )
    api_token: str = setting(
        "JOURNEY_API_TOKEN",
        "",
        TEXT,
        "bearer token every API call must carry (all but /metrics, /live, /ready); "
        "empty: the API refuses every call",
    )
    advertised_url: str = setting(
        "JOURNEY_ADVERTISED_URL",
        "",
        TEXT,
        "URL other workers reach this one at, for routing API calls to a key's owner "
        "(default: http://<JOURNEY_WEB_HOST>:<JOURNEY_WEB_PORT>)",
    )
    decisions_kept: int = setting(
        "JOURNEY_DECISIONS_KEPT",
        "20",
        COUNT,
        "latest explain records kept per customer for the API",
    )
    group_instance_id: str = setting(
        "JOURNEY_GROUP_INSTANCE_ID",
        "",
        TEXT,
        "static group membership id, stable across restarts (a StatefulSet pod name); "
        "empty: dynamic membership",
    )
    rocksdb_memory_mb: int = setting(
        "JOURNEY_ROCKSDB_MEMORY_MB",
        "64",
        POSITIVE_INT,
        "RocksDB memory per partition of the customers table: block cache, plus write "
        "buffers of a quarter of it (two at most); the other tables an eighth of that",
    )
    processing_guarantee: str = setting(
        "JOURNEY_PROCESSING_GUARANTEE",
        "at_least_once",
        _choice(PROCESSING_GUARANTEES),
        "Faust's processing guarantee: at_least_once (with idempotency keys downstream) or "
        "exactly_once (Kafka transactions; evaluated, not recommended: see docs/guarantees.md)",
    )
    fast_drain: bool = setting(
        "JOURNEY_FAST_DRAIN",
        "true",
        FLAG,
        "Faust fast paths: deliver consumed messages without Faust's per-message task race "
        "when nothing can block, restore changelogs without its per-record wait "
        "(faust-streaming 0.15.3 only; `false` keeps Faust's race and restore; the offset "
        "continuity checks stay on either way)",
    )
    batched_writes: bool = setting(
        "JOURNEY_BATCHED_WRITES",
        "true",
        FLAG,
        "write a batch's state as one RocksDB write batch per table and partition, its "
        "changelog records sent with the outputs (RocksDB store, at_least_once only); "
        "`false`: a put and a changelog record per change through Faust's tables",
    )
    bulk_restore_min_records: int = setting(
        "JOURNEY_BULK_RESTORE_MIN_RECORDS",
        "10000",
        COUNT,
        "a changelog partition at least this many records behind is restored by a plain "
        "consumer in RocksDB write batches before Faust's per-record recovery (about 3 "
        "times faster; docs/operating.md); 0: Faust restores everything",
    )
    compression: str = setting(
        "JOURNEY_COMPRESSION",
        "none",
        _choice(COMPRESSION_CODECS),
        "compression of every message the worker and the CLI tools produce: `none`, `gzip`, "
        "`snappy`, `lz4` or `zstd`; input in any of these codecs is always read",
    )
    fault_send: tuple[str, int] | None = setting(  # (topic suffix, n)
        "JOURNEY_FAULT_SEND",
        "",
        FAULT_SEND,
        "fault tests only: `<topic suffix>:<n>` makes the n-th send to such a topic fail, to "
        "prove that the worker then exits (code 75) without committing past it",
    )
    security_protocol: str = setting(
        "JOURNEY_SECURITY_PROTOCOL",
        "PLAINTEXT",
        _choice(SECURITY_PROTOCOLS, str.upper),
        "how every Kafka client (the worker's and the CLI's) talks to the broker: "
        "`PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or `SASL_SSL` (SASL over TLS); "
        "see docs/operating.md",
    )
    sasl_mechanism: str = setting(
        "JOURNEY_SASL_MECHANISM",
        "PLAIN",
        _choice(SASL_MECHANISMS, str.upper),
        "SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`",
    )
    sasl_username: str = setting(
        "JOURNEY_SASL_USERNAME", "", TEXT, "SASL user name (required by the SASL protocols)"
    )
    sasl_password_file: Path | None = setting(
        "JOURNEY_SASL_PASSWORD_FILE",
        "",
        FILE,
        "file holding the SASL password (one trailing newline ignored); preferred: the "
        "secret stays out of the environment and the process list",
    )
    # load_settings puts the password file's content here: never in a repr or a log
    sasl_password: str = setting(
        "JOURNEY_SASL_PASSWORD",
        "",
        TEXT,
        "the SASL password itself, only where a file is impossible (visible in the process "
        "environment); set this or `JOURNEY_SASL_PASSWORD_FILE`, not both",
        secret=True,
    )
    ssl_cafile: Path | None = setting(
        "JOURNEY_SSL_CAFILE",
        "",
        FILE,
        "PEM file of the CA certificates the broker's certificate is checked against "
        "(`SSL`, `SASL_SSL`); empty: the system's CAs",
    )
    ssl_certfile: Path | None = setting(
        "JOURNEY_SSL_CERTFILE",
        "",
        FILE,
        "client certificate (PEM) for brokers that require mutual TLS; may also hold the key",
    )
    ssl_keyfile: Path | None = setting(
        "JOURNEY_SSL_KEYFILE",
        "",
        FILE,
        "unencrypted private key (PEM) of `JOURNEY_SSL_CERTFILE`",
    )
    collector_host: str = setting(
        "JOURNEY_COLLECTOR_HOST",
        "127.0.0.1",
        TEXT,
        "bind address of `journey collector`, the HTTP front door to the ingress topics "
        "(docs/collector.md)",
    )
    collector_port: int = setting(
        "JOURNEY_COLLECTOR_PORT",
        "6070",
        PORT,
        "port of `journey collector` (`/events`, `/outcomes`, `/metrics`, `/ready`)",
    )
    collector_keys_file: Path | None = setting(
        "JOURNEY_COLLECTOR_KEYS_FILE",
        "",
        FILE,
        "the collector's API keys (YAML: name, token, channels, rate, body limit, HMAC "
        "secret; docs/collector.md); re-read when it changes (a mounted Kubernetes secret)",
    )
    collector_max_body_bytes: int = setting(
        "JOURNEY_COLLECTOR_MAX_BODY_BYTES",
        "1048576",
        POSITIVE_INT,
        "largest request body the collector reads (413 above); a key may set a lower limit",
    )
    collector_max_records: int = setting(
        "JOURNEY_COLLECTOR_MAX_RECORDS",
        "1000",
        POSITIVE_INT,
        "most events (or outcomes) in one collector request (413 above)",
    )
    collector_ack_timeout_s: float = setting(
        "JOURNEY_COLLECTOR_ACK_TIMEOUT_S",
        "10",
        POSITIVE,
        "longest the collector waits for the broker to acknowledge a request's records "
        "before it answers 503",
    )
    collector_max_inflight_requests: int = setting(
        "JOURNEY_COLLECTOR_MAX_INFLIGHT_REQUESTS",
        "256",
        POSITIVE_INT,
        "requests the collector holds at once (reading, validating, awaiting acks); "
        "more are answered 429",
    )
    collector_max_inflight_bytes: int = setting(
        "JOURNEY_COLLECTOR_MAX_INFLIGHT_BYTES",
        "67108864",
        POSITIVE_INT,
        "request bytes the collector holds at once; more are answered 429",
    )
    collector_cors_origins: tuple[str, ...] = setting(
        "JOURNEY_COLLECTOR_CORS_ORIGINS",
        "",
        ORIGINS,
        "origins browsers may post to the collector from (comma separated, e.g. "
        "`https://shop.example.com`; `*`: any); empty: no CORS",
    )
    collector_signature_tolerance_s: float = setting(
        "JOURNEY_COLLECTOR_SIGNATURE_TOLERANCE_S",
        "300",
        POSITIVE,
        "how far (s) a signed request's X-Journey-Timestamp may be from the collector's clock",
    )

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

    def decode_options(self, catalog: SchemaCatalog) -> DecodeOptions:
        """The decoder's options for input: the same for the ingest step and the collector."""
        from stream.core.events import DecodeOptions

        return DecodeOptions(catalog, self.max_event_bytes, self.hash_salt, self.default_region)

    @property
    def compression_type(self) -> str | None:
        """The producers' ``compression_type`` (None: uncompressed)."""
        return None if self.compression == "none" else self.compression

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

    @property
    def uses_sasl(self) -> bool:
        """True if the clients authenticate with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        """True if the clients talk TLS to the broker."""
        return self.security_protocol in ("SSL", "SASL_SSL")


# Read by environment_with_file, before the settings: no field of Settings.
ENV_FILE = Setting(
    "JOURNEY_ENV_FILE",
    ".run/demo/journey.env",
    FILE,
    "settings file of the `journey` commands (`export JOURNEY_...=value` lines, as "
    "`make demo` writes them); variables set in the environment win; the default is read "
    "only if it exists and `JOURNEY_TOPIC_PREFIX` is unset; empty: no file "
    "(see [docs/cli.md](cli.md))",
)

SETTINGS: tuple[Setting, ...] = (*(f.metadata["setting"] for f in fields(Settings)), ENV_FILE)
SETTINGS_DOC: dict[str, tuple[str, str]] = {s.env: (s.default, s.doc) for s in SETTINGS}
"""name -> (default as the environment spells it, meaning): a view of ``SETTINGS``."""


def settings_table() -> str:
    """The Markdown table of every setting, as docs/configuration.md shows it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        rows.append(f"| `{s.env}` | {default} | {s.doc} |")
    return "\n".join(rows) + "\n"


# --- reading the environment -------------------------------------------------------------


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (or the given mapping), defaults filled in; a bad
    value, or security settings that contradict each other, raise SettingsError."""
    source = os.environ if env is None else env
    settings = Settings(**{f.name: f.metadata["setting"].read(source) for f in fields(Settings)})
    return _with_security_checked(settings)


def _with_security_checked(settings: Settings) -> Settings:
    """``settings`` with the SASL password read from its file, once the Kafka security
    settings are known to fit together (the errors name the setting)."""
    protocol = settings.security_protocol
    sasl_values = {
        "JOURNEY_SASL_USERNAME": settings.sasl_username,
        "JOURNEY_SASL_PASSWORD_FILE": settings.sasl_password_file,
        "JOURNEY_SASL_PASSWORD": settings.sasl_password,
    }
    tls_files = {
        "JOURNEY_SSL_CAFILE": settings.ssl_cafile,
        "JOURNEY_SSL_CERTFILE": settings.ssl_certfile,
        "JOURNEY_SSL_KEYFILE": settings.ssl_keyfile,
    }
    if not settings.uses_sasl:
        _refuse_ignored(sasl_values, protocol, "SASL needs SASL_PLAINTEXT or SASL_SSL")
    if not settings.uses_tls:
        _refuse_ignored(tls_files, protocol, "TLS needs SSL or SASL_SSL")
    password = _sasl_password(settings.sasl_password_file, settings.sasl_password)
    if settings.uses_sasl and not settings.sasl_username:
        raise SettingsError(f"JOURNEY_SECURITY_PROTOCOL={protocol} needs JOURNEY_SASL_USERNAME")
    if settings.uses_sasl and not password:
        raise SettingsError(
            f"JOURNEY_SECURITY_PROTOCOL={protocol} needs JOURNEY_SASL_PASSWORD_FILE "
            "(or JOURNEY_SASL_PASSWORD)"
        )
    if settings.ssl_keyfile and not settings.ssl_certfile:
        raise SettingsError("JOURNEY_SSL_KEYFILE needs JOURNEY_SSL_CERTFILE (its certificate)")
    for name, path in tls_files.items():
        _check_readable(name, path)
    return replace(settings, sasl_password=password)


def _refuse_ignored(values: Mapping[str, object], protocol: str, needs: str) -> None:
    """Refuse a credential or certificate the protocol would silently ignore: whoever set it
    believes the connection is authenticated or encrypted."""
    for name, value in values.items():
        if value:
            raise SettingsError(
                f"{name} is set but JOURNEY_SECURITY_PROTOCOL is {protocol}: {needs}"
            )


def _check_readable(name: str, path: Path | None) -> None:
    """Refuse the file a setting names unless it can be read (None: nothing named)."""
    if path is None:
        return
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path} ({exc.strerror or exc})") from None


def _sasl_password(password_file: Path | None, password: str) -> str:
    """The SASL password, from JOURNEY_SASL_PASSWORD_FILE (preferred) or JOURNEY_SASL_PASSWORD."""
    if password_file and password:
        raise SettingsError(
            "set JOURNEY_SASL_PASSWORD_FILE or JOURNEY_SASL_PASSWORD, not both "
            "(the file is preferred)"
        )
    if password_file is None:
        return password
    text = _read_text("JOURNEY_SASL_PASSWORD_FILE", password_file)
    text = text.removesuffix("\n").removesuffix("\r")  # as written by `echo` or a text editor
    if not text:
        raise SettingsError(f"JOURNEY_SASL_PASSWORD_FILE: {password_file} is empty")
    return text


def _read_text(name: str, path: Path) -> str:
    """The UTF-8 text of the file a setting names; refused with the setting's name."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"{name}: cannot read {path} ({reason})") from None


# --- the settings file of the `journey` commands -----------------------------------------

ENV_FILE_NAME = re.compile(r"JOURNEY_[A-Z0-9_]+")
DEFAULT_ENV_FILE = Path(ENV_FILE.default)  # relative: where `journey` runs


def write_env_file(path: Path, values: Mapping[str, str], comment: str = "") -> None:
    """Write ``values`` as ``export NAME=value`` lines a shell can source, readable by the
    owner alone (the file may hold the API token); replaces the file in one step."""
    lines = [f"# {line}\n" for line in comment.splitlines()]
    lines += [f"export {name}={shlex.quote(value)}\n" for name, value in sorted(values.items())]
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older temporary file may have had another mode
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("".join(lines))
    os.replace(temporary, path)


def read_env_file(path: Path) -> dict[str, str]:
    """The JOURNEY_* variables of a settings file (``[export] NAME=value`` lines, shell
    quoting, ``#`` comments); an unreadable file or a bad line is refused with its name."""
    text = _read_text(ENV_FILE.env, path)
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{ENV_FILE.env}: {path} line {number}"
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        words = words[1:] if words[:1] == ["export"] else words
        if not words:
            continue
        name, equals, value = words[0].partition("=")
        if len(words) != 1 or not equals or not ENV_FILE_NAME.fullmatch(name):
            # the line itself is not shown: it may hold a secret
            raise SettingsError(f"{where} is not `export JOURNEY_NAME=value`")
        values[name] = value
    return values


def environment_with_file(environ: Mapping[str, str]) -> tuple[dict[str, str], Path | None]:
    """``environ`` over the settings file JOURNEY_ENV_FILE names (see ``ENV_FILE``), and the
    file that was read (None if none was)."""
    named = environ.get(ENV_FILE.env)
    if named == "":
        return dict(environ), None
    path = Path(named) if named else DEFAULT_ENV_FILE
    if named is None and ("JOURNEY_TOPIC_PREFIX" in environ or not path.is_file()):
        return dict(environ), None  # a local demo's file only stands in for a missing setup
    return {**read_env_file(path), **environ}, path


if __name__ == "__main__":
    print(settings_table(), end="")
