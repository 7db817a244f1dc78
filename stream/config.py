"""Every setting of Journey Stream, read once from the environment and passed down.

The README's configuration table is generated from ``SETTINGS_DOC`` below, so the
names, defaults and meanings live in one place.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

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
    "JOURNEY_PROCESSING_GUARANTEE": (
        "at_least_once",
        "Faust's processing guarantee: at_least_once (with idempotency keys downstream) or "
        "exactly_once (Kafka transactions; evaluated, not recommended: see README)",
    ),
    "JOURNEY_COMPRESSION": (
        "none",
        "compression of every message the worker and the CLI tools produce: `none`, `gzip`, "
        "`snappy`, `lz4` or `zstd` (input in any of these codecs is always read)",
    ),
    "JOURNEY_FAULT_SEND": (
        "",
        "fault tests only: `<topic suffix>:<n>` makes the n-th send to such a topic fail, to "
        "prove that the worker then exits (code 75) without committing past it",
    ),
    "JOURNEY_FAST_DRAIN": (
        "true",
        "Faust fast paths: deliver consumed messages without Faust's per-message task race "
        "when nothing can block, restore changelogs without its per-record wait "
        "(faust-streaming 0.15.3 only; `false` keeps Faust's race and restore; the offset "
        "continuity checks stay on either way)",
    ),
    "JOURNEY_SECURITY_PROTOCOL": (
        "PLAINTEXT",
        "how every Kafka client talks to the broker: `PLAINTEXT`, `SSL` (TLS), "
        "`SASL_PLAINTEXT` or `SASL_SSL` (SASL over TLS)",
    ),
    "JOURNEY_SASL_MECHANISM": (
        "PLAIN",
        "SASL mechanism of the SASL protocols: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`",
    ),
    "JOURNEY_SASL_USERNAME": ("", "SASL user name (required by the SASL protocols)"),
    "JOURNEY_SASL_PASSWORD_FILE": (
        "",
        "file holding the SASL password (one trailing newline ignored): the preferred way, "
        "the secret stays out of the environment and the process list",
    ),
    "JOURNEY_SASL_PASSWORD": (
        "",
        "the SASL password itself, where a file is impossible (visible in the process "
        "environment); set this or JOURNEY_SASL_PASSWORD_FILE, not both",
    ),
    "JOURNEY_SSL_CAFILE": (
        "",
        "PEM file of the CA certificates the broker's certificate is checked against "
        "(`SSL`, `SASL_SSL`; default: the system's CAs)",
    ),
    "JOURNEY_SSL_CERTFILE": (
        "",
        "client certificate (PEM) for brokers that require mutual TLS; may also hold the key",
    ),
    "JOURNEY_SSL_KEYFILE": ("", "unencrypted private key (PEM) of JOURNEY_SSL_CERTFILE"),
    "JOURNEY_ENV_FILE": (
        ".run/demo/journey.env",
        "settings file of the `journey` commands (`export JOURNEY_...=value` lines, as "
        "`make demo` writes them); variables set in the environment win; the default is "
        "read only if it exists and JOURNEY_TOPIC_PREFIX is unset; empty: no file",
    ),
}

COMPRESSION_CODECS: tuple[str, ...] = ("none", "gzip", "snappy", "lz4", "zstd")
SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ValueError):
    """A setting with a value the worker cannot run with; the message names the setting."""


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; anything else is refused with the setting's name."""
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_flag(name: str, value: str) -> bool:
    """A true/false setting; anything else is refused with the setting's name."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


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
    processing_guarantee: str = "at_least_once"
    compression: str = "none"
    fault_send: tuple[str, int] | None = None  # (topic suffix, n): JOURNEY_FAULT_SEND
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)  # the secret: never in a repr or log
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

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


def _readable_file(name: str, value: str) -> Path | None:
    """The file a setting names (None if empty); refused unless it can be read."""
    if not value:
        return None
    path = Path(value)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {value} ({exc.strerror or exc})") from None
    return path


def _fault_send(value: str) -> tuple[str, int] | None:
    """JOURNEY_FAULT_SEND as (topic suffix, n): empty, or ``<topic suffix>:<n >= 1>``."""
    if not value:
        return None
    suffix, _, nth = value.rpartition(":")
    if not (suffix and nth.isdigit() and int(nth) >= 1):
        raise SettingsError(f"JOURNEY_FAULT_SEND must be <topic suffix>:<n >= 1>, not {value!r}")
    return suffix, int(nth)


def _sasl_password(get: Callable[[str], str]) -> str:
    """The SASL password, from JOURNEY_SASL_PASSWORD_FILE (preferred) or JOURNEY_SASL_PASSWORD."""
    password_file, password = get("JOURNEY_SASL_PASSWORD_FILE"), get("JOURNEY_SASL_PASSWORD")
    if password_file and password:
        raise SettingsError(
            "set JOURNEY_SASL_PASSWORD_FILE or JOURNEY_SASL_PASSWORD, not both "
            "(the file is preferred)"
        )
    if not password_file:
        return password
    try:
        text = Path(password_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(
            f"JOURNEY_SASL_PASSWORD_FILE: cannot read {password_file} ({reason})"
        ) from None
    text = text.removesuffix("\n").removesuffix("\r")  # as written by `echo` or a text editor
    if not text:
        raise SettingsError(f"JOURNEY_SASL_PASSWORD_FILE: {password_file} is empty")
    return text


class _Security(TypedDict):
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str
    ssl_cafile: Path | None
    ssl_certfile: Path | None
    ssl_keyfile: Path | None


def _security(get: Callable[[str], str]) -> _Security:
    """The Kafka security settings, checked together (the errors name the setting)."""
    protocol = get("JOURNEY_SECURITY_PROTOCOL").strip().upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(
            f"JOURNEY_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, "
            f"not {get('JOURNEY_SECURITY_PROTOCOL')!r}"
        )
    mechanism = get("JOURNEY_SASL_MECHANISM").strip().upper()
    if mechanism not in SASL_MECHANISMS:
        raise SettingsError(
            f"JOURNEY_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, "
            f"not {get('JOURNEY_SASL_MECHANISM')!r}"
        )
    sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    tls = protocol in ("SSL", "SASL_SSL")
    # A credential or certificate the protocol would silently ignore is refused: whoever set
    # it believes the connection is authenticated or encrypted.
    for name in ("JOURNEY_SASL_USERNAME", "JOURNEY_SASL_PASSWORD_FILE", "JOURNEY_SASL_PASSWORD"):
        if get(name) and not sasl:
            raise SettingsError(
                f"{name} is set but JOURNEY_SECURITY_PROTOCOL is {protocol}: "
                "SASL needs SASL_PLAINTEXT or SASL_SSL"
            )
    for name in ("JOURNEY_SSL_CAFILE", "JOURNEY_SSL_CERTFILE", "JOURNEY_SSL_KEYFILE"):
        if get(name) and not tls:
            raise SettingsError(
                f"{name} is set but JOURNEY_SECURITY_PROTOCOL is {protocol}: "
                "TLS needs SSL or SASL_SSL"
            )
    username = get("JOURNEY_SASL_USERNAME")
    password = _sasl_password(get)
    if sasl and not username:
        raise SettingsError(f"JOURNEY_SECURITY_PROTOCOL={protocol} needs JOURNEY_SASL_USERNAME")
    if sasl and not password:
        raise SettingsError(
            f"JOURNEY_SECURITY_PROTOCOL={protocol} needs JOURNEY_SASL_PASSWORD_FILE "
            "(or JOURNEY_SASL_PASSWORD)"
        )
    if get("JOURNEY_SSL_KEYFILE") and not get("JOURNEY_SSL_CERTFILE"):
        raise SettingsError("JOURNEY_SSL_KEYFILE needs JOURNEY_SSL_CERTFILE (its certificate)")
    return _Security(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=password,
        ssl_cafile=_readable_file("JOURNEY_SSL_CAFILE", get("JOURNEY_SSL_CAFILE")),
        ssl_certfile=_readable_file("JOURNEY_SSL_CERTFILE", get("JOURNEY_SSL_CERTFILE")),
        ssl_keyfile=_readable_file("JOURNEY_SSL_KEYFILE", get("JOURNEY_SSL_KEYFILE")),
    )


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
        processing_guarantee=parse_choice(
            "JOURNEY_PROCESSING_GUARANTEE",
            get("JOURNEY_PROCESSING_GUARANTEE"),
            ("at_least_once", "exactly_once"),
        ),
        compression=parse_choice(
            "JOURNEY_COMPRESSION", get("JOURNEY_COMPRESSION").strip().lower(), COMPRESSION_CODECS
        ),
        fault_send=_fault_send(get("JOURNEY_FAULT_SEND")),
        **_security(get),
    )


ENV_FILE_NAME = re.compile(r"JOURNEY_[A-Z0-9_]+")
DEFAULT_ENV_FILE = Path(SETTINGS_DOC["JOURNEY_ENV_FILE"][0])  # relative: where `journey` runs


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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"JOURNEY_ENV_FILE: cannot read {path} ({reason})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"JOURNEY_ENV_FILE: {path} line {number}"
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
    """``environ`` over the settings file JOURNEY_ENV_FILE names (see its entry in
    ``SETTINGS_DOC``), and the file that was read (None if none was)."""
    named = environ.get("JOURNEY_ENV_FILE")
    if named == "":
        return dict(environ), None
    path = Path(named) if named else DEFAULT_ENV_FILE
    if named is None and ("JOURNEY_TOPIC_PREFIX" in environ or not path.is_file()):
        return dict(environ), None  # a local demo's file only stands in for a missing setup
    return {**read_env_file(path), **environ}, path
