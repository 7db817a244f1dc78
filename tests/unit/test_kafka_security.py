"""SASL/TLS settings: parsing and checks, Faust credentials, aiokafka arguments, and that
the worker and every Kafka client of the package get them (no broker: the clients are fakes
that record their arguments, or aiokafka clients that are never started)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism

from stream import cli
from stream.app import create_app, create_faust_app
from stream.config import SETTINGS_DOC, Settings, SettingsError, load_settings
from stream.shell import forget, kafka_security, lag, model_view, topics, watch
from stream.shell.kafka_security import (
    BrokerAccessError,
    broker_credentials,
    check_broker_access,
    client_kwargs,
    credentials_client_kwargs,
    ssl_context,
)
from stream.shell.metrics import Metrics
from stream.simulate import producer, sender

ROOT = Path(__file__).resolve().parents[2]
A_FILE = str(Path(__file__).resolve())  # any readable file
SECRET = "pa55-w0rd-not-in-repr"
SECURITY_KEYS = {
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "ssl_context",
}


@dataclass(frozen=True)
class Pki:
    """Throwaway PEM files: a CA, a client certificate and key, an encrypted key."""

    ca: Path
    client_cert: Path
    client_key: Path
    encrypted_cert: Path
    encrypted_key: Path
    garbage: Path


def _self_signed(openssl: str, directory: Path, name: str, *key_args: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            *key_args,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    # The `cryptography` package is not in the environment; the openssl CLI makes the files.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command to make a throwaway certificate")
    directory = tmp_path_factory.mktemp("pki")
    ca, _ = _self_signed(openssl, directory, "journey-test-ca", "-nodes")
    client_cert, client_key = _self_signed(openssl, directory, "journey-client", "-nodes")
    encrypted_cert, encrypted_key = _self_signed(
        openssl, directory, "journey-encrypted", "-passout", "pass:secret"
    )
    garbage = directory / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    )
    return Pki(ca, client_cert, client_key, encrypted_cert, encrypted_key, garbage)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "sasl-password"
    path.write_text(SECRET + "\n")  # as `echo` or a Kubernetes Secret made from a file writes it
    return path


def sasl_env(password_file: Path, protocol: str = "SASL_PLAINTEXT", **more: str) -> dict[str, str]:
    return {
        "JOURNEY_SECURITY_PROTOCOL": protocol,
        "JOURNEY_SASL_USERNAME": "journey",
        "JOURNEY_SASL_PASSWORD_FILE": str(password_file),
        **more,
    }


def scram_over_tls(password_file: Path, pki: Pki) -> dict[str, str]:
    """SASL_SSL with SCRAM-SHA-512, trusting the test CA."""
    return sasl_env(
        password_file,
        "SASL_SSL",
        JOURNEY_SASL_MECHANISM="SCRAM-SHA-512",
        JOURNEY_SSL_CAFILE=str(pki.ca),
    )


# --- parsing ---------------------------------------------------------------------------


def test_the_defaults_are_plaintext_without_credentials() -> None:
    settings = load_settings({})
    assert settings.security_protocol == SETTINGS_DOC["JOURNEY_SECURITY_PROTOCOL"][0]
    assert (settings.security_protocol, settings.sasl_mechanism) == ("PLAINTEXT", "PLAIN")
    assert (settings.sasl_username, settings.sasl_password) == ("", "")
    assert (settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile) == (None,) * 3
    assert not settings.uses_sasl and not settings.uses_tls
    assert broker_credentials(settings) is None
    assert client_kwargs(settings) == {}


@pytest.mark.parametrize(
    ("protocol", "sasl", "tls"),
    [
        ("PLAINTEXT", False, False),
        ("SSL", False, True),
        ("SASL_PLAINTEXT", True, False),
        ("SASL_SSL", True, True),
        ("sasl_ssl", True, True),  # the case of the value does not matter
    ],
)
def test_each_protocol_is_accepted(
    protocol: str, sasl: bool, tls: bool, password_file: Path
) -> None:
    env = sasl_env(password_file, protocol) if sasl else {"JOURNEY_SECURITY_PROTOCOL": protocol}
    settings = load_settings(env)
    assert settings.security_protocol == protocol.upper()
    assert (settings.uses_sasl, settings.uses_tls) == (sasl, tls)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "scram-sha-512"])
def test_each_sasl_mechanism_is_accepted(mechanism: str, password_file: Path) -> None:
    settings = load_settings(sasl_env(password_file, JOURNEY_SASL_MECHANISM=mechanism))
    assert settings.sasl_mechanism == mechanism.upper()


def test_the_password_comes_from_its_file_without_the_trailing_newline(
    password_file: Path,
) -> None:
    settings = load_settings(sasl_env(password_file))
    assert (settings.sasl_username, settings.sasl_password) == ("journey", SECRET)
    password_file.write_text(SECRET + "\r\n")
    assert load_settings(sasl_env(password_file)).sasl_password == SECRET
    password_file.write_text(" spaces kept ")
    assert load_settings(sasl_env(password_file)).sasl_password == " spaces kept "


def test_the_password_may_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "JOURNEY_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "JOURNEY_SASL_USERNAME": "journey",
            "JOURNEY_SASL_PASSWORD": SECRET,
        }
    )
    assert settings.sasl_password == SECRET


def test_the_password_is_in_no_repr(password_file: Path, pki: Pki) -> None:
    settings = load_settings(sasl_env(password_file, "SASL_SSL", JOURNEY_SSL_CAFILE=str(pki.ca)))
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert "sasl_username='journey'" in repr(settings)
    assert SECRET not in repr(broker_credentials(settings))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"JOURNEY_SECURITY_PROTOCOL": "TLS"},
            "JOURNEY_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
            "SASL_SSL, got 'TLS'",
        ),
        (
            {"JOURNEY_SASL_MECHANISM": "GSSAPI"},
            "JOURNEY_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
            "got 'GSSAPI'",
        ),
        (
            {"JOURNEY_SECURITY_PROTOCOL": "SASL_SSL", "JOURNEY_SASL_PASSWORD": "x"},
            "JOURNEY_SECURITY_PROTOCOL=SASL_SSL needs JOURNEY_SASL_USERNAME",
        ),
        (
            {"JOURNEY_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "JOURNEY_SASL_USERNAME": "u"},
            "JOURNEY_SECURITY_PROTOCOL=SASL_PLAINTEXT needs JOURNEY_SASL_PASSWORD_FILE "
            "(or JOURNEY_SASL_PASSWORD)",
        ),
        (
            {
                "JOURNEY_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "JOURNEY_SASL_USERNAME": "u",
                "JOURNEY_SASL_PASSWORD": "x",
                "JOURNEY_SASL_PASSWORD_FILE": A_FILE,
            },
            "set JOURNEY_SASL_PASSWORD_FILE or JOURNEY_SASL_PASSWORD, not both",
        ),
        (
            {
                "JOURNEY_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "JOURNEY_SASL_USERNAME": "u",
                "JOURNEY_SASL_PASSWORD_FILE": "/nonexistent/sasl-password",
            },
            "JOURNEY_SASL_PASSWORD_FILE: cannot read /nonexistent/sasl-password "
            "(No such file or directory)",
        ),
        (
            {"JOURNEY_SASL_USERNAME": "u"},
            "JOURNEY_SASL_USERNAME is set but JOURNEY_SECURITY_PROTOCOL is PLAINTEXT: "
            "SASL needs SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SASL_PASSWORD": "x"},
            "JOURNEY_SASL_PASSWORD is set but JOURNEY_SECURITY_PROTOCOL is SSL",
        ),
        (
            {"JOURNEY_SSL_CAFILE": A_FILE},
            "JOURNEY_SSL_CAFILE is set but JOURNEY_SECURITY_PROTOCOL is PLAINTEXT: "
            "TLS needs SSL or SASL_SSL",
        ),
        (
            {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SSL_CAFILE": "/nonexistent/ca.pem"},
            "JOURNEY_SSL_CAFILE: cannot read /nonexistent/ca.pem (No such file or directory)",
        ),
        (
            {
                "JOURNEY_SECURITY_PROTOCOL": "SSL",
                "JOURNEY_SSL_CERTFILE": "/nonexistent/client.pem",
            },
            "JOURNEY_SSL_CERTFILE: cannot read /nonexistent/client.pem",
        ),
        (
            {
                "JOURNEY_SECURITY_PROTOCOL": "SSL",
                "JOURNEY_SSL_CERTFILE": A_FILE,
                "JOURNEY_SSL_KEYFILE": "/nonexistent/client.key",
            },
            "JOURNEY_SSL_KEYFILE: cannot read /nonexistent/client.key",
        ),
        (
            {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SSL_KEYFILE": A_FILE},
            "JOURNEY_SSL_KEYFILE needs JOURNEY_SSL_CERTFILE",
        ),
    ],
)
def test_a_bad_security_setting_is_refused_with_its_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    assert str(error.value).startswith(message), str(error.value)
    assert isinstance(error.value, ValueError)  # what load_settings raised for bad values before


def test_an_unreadable_or_empty_password_file_is_refused(tmp_path: Path) -> None:
    env = {"JOURNEY_SECURITY_PROTOCOL": "SASL_SSL", "JOURNEY_SASL_USERNAME": "u"}
    with pytest.raises(SettingsError, match=r"JOURNEY_SASL_PASSWORD_FILE: cannot read .*directory"):
        load_settings({**env, "JOURNEY_SASL_PASSWORD_FILE": str(tmp_path)})  # a directory
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match=r"JOURNEY_SASL_PASSWORD_FILE: .*empty is empty"):
        load_settings({**env, "JOURNEY_SASL_PASSWORD_FILE": str(tmp_path / "empty")})
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingsError, match="JOURNEY_SASL_PASSWORD_FILE: cannot read"):
        load_settings({**env, "JOURNEY_SASL_PASSWORD_FILE": str(tmp_path / "binary")})


def test_a_bad_pem_file_is_refused_with_the_setting_name(pki: Pki) -> None:
    bad_ca = load_settings(
        {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SSL_CAFILE": str(pki.garbage)}
    )
    with pytest.raises(SettingsError, match="JOURNEY_SSL_CAFILE: no CA certificate loaded"):
        ssl_context(bad_ca)
    wrong_key = load_settings(
        {
            "JOURNEY_SECURITY_PROTOCOL": "SSL",
            "JOURNEY_SSL_CERTFILE": str(pki.client_cert),
            "JOURNEY_SSL_KEYFILE": str(pki.encrypted_cert),  # a certificate, not its key
        }
    )
    with pytest.raises(SettingsError, match="JOURNEY_SSL_CERTFILE/JOURNEY_SSL_KEYFILE"):
        ssl_context(wrong_key)


def test_an_encrypted_key_is_refused_instead_of_prompting_for_its_password(pki: Pki) -> None:
    settings = load_settings(
        {
            "JOURNEY_SECURITY_PROTOCOL": "SSL",
            "JOURNEY_SSL_CERTFILE": str(pki.encrypted_cert),
            "JOURNEY_SSL_KEYFILE": str(pki.encrypted_key),
        }
    )
    with pytest.raises(SettingsError, match="JOURNEY_SSL_KEYFILE is encrypted"):
        ssl_context(settings)


# --- Faust credentials and aiokafka arguments ----------------------------------------------


def test_the_tls_context_checks_the_broker_against_the_given_ca(pki: Pki) -> None:
    settings = load_settings(
        {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SSL_CAFILE": str(pki.ca)}
    )
    context = ssl_context(settings)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    [ca] = context.get_ca_certs()
    assert ca["subject"] == ((("commonName", "journey-test-ca"),),)


def test_mutual_tls_loads_the_client_certificate_and_key(pki: Pki) -> None:
    settings = load_settings(
        {
            "JOURNEY_SECURITY_PROTOCOL": "SSL",
            "JOURNEY_SSL_CAFILE": str(pki.ca),
            "JOURNEY_SSL_CERTFILE": str(pki.client_cert),
            "JOURNEY_SSL_KEYFILE": str(pki.client_key),
        }
    )
    assert isinstance(ssl_context(settings), ssl.SSLContext)


def test_ssl_without_a_ca_file_trusts_the_system_cas() -> None:
    context = ssl_context(load_settings({"JOURNEY_SECURITY_PROTOCOL": "SSL"}))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_plaintext_credentials(password_file: Path) -> None:
    settings = load_settings(sasl_env(password_file, JOURNEY_SASL_MECHANISM="SCRAM-SHA-256"))
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_256
    assert (credentials.username, credentials.password) == ("journey", SECRET)
    assert credentials.ssl_context is None
    assert client_kwargs(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "journey",
        "sasl_plain_password": SECRET,
    }


def test_sasl_ssl_credentials(password_file: Path, pki: Pki) -> None:
    settings = load_settings(scram_over_tls(password_file, pki))
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("journey", SECRET)
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.get_ca_certs()[0]["subject"][0][0][1] == "journey-test-ca"
    kwargs = client_kwargs(settings)
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "journey",
        "sasl_plain_password": SECRET,
    }


def test_ssl_credentials(pki: Pki) -> None:
    settings = load_settings(
        {"JOURNEY_SECURITY_PROTOCOL": "SSL", "JOURNEY_SSL_CAFILE": str(pki.ca)}
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL
    assert credentials.context.get_ca_certs()[0]["subject"][0][0][1] == "journey-test-ca"
    kwargs = client_kwargs(settings)
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    assert kwargs["security_protocol"] == "SSL"
    assert kwargs["ssl_context"].get_ca_certs() == credentials.context.get_ca_certs()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_the_clients_get_what_faust_gives_the_workers_own_clients(
    protocol: str, password_file: Path, pki: Pki
) -> None:
    env: dict[str, str] = {"JOURNEY_SECURITY_PROTOCOL": protocol}
    if "SASL" in protocol:
        env = sasl_env(password_file, protocol, JOURNEY_SASL_MECHANISM="SCRAM-SHA-512")
    if "SSL" in protocol:
        env["JOURNEY_SSL_CAFILE"] = str(pki.ca)
    settings = load_settings(env)
    credentials = broker_credentials(settings)

    def comparable(kwargs: dict[str, Any]) -> dict[str, Any]:
        # two contexts from the same files; an unset context is aiokafka's default
        return {
            k: type(v) if k == "ssl_context" else v
            for k, v in kwargs.items()
            if v is not None and (k, v) != ("security_protocol", "PLAINTEXT")
        }

    faust_kwargs = dict(credentials_to_aiokafka_auth(credentials))
    assert comparable(client_kwargs(settings)) == comparable(faust_kwargs)
    assert comparable(credentials_client_kwargs(credentials)) == comparable(faust_kwargs)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_aiokafka_accepts_the_arguments(
    mechanism: str, password_file: Path, pki: Pki
) -> None:
    """aiokafka checks SASL/TLS arguments when a client is made (it connects only at start)."""
    settings = load_settings(
        sasl_env(
            password_file,
            "SASL_SSL",
            JOURNEY_SASL_MECHANISM=mechanism,
            JOURNEY_SSL_CAFILE=str(pki.ca),
        )
    )
    kwargs = client_kwargs(settings)
    made = aiokafka.AIOKafkaProducer(bootstrap_servers="broker.invalid:9093", **kwargs)
    consumer = aiokafka.AIOKafkaConsumer("t", bootstrap_servers="broker.invalid:9093", **kwargs)
    admin = AIOKafkaAdminClient(bootstrap_servers="broker.invalid:9093", **kwargs)
    assert made.client._security_protocol == "SASL_SSL"
    assert made.client._sasl_mechanism == mechanism
    assert consumer._client._sasl_plain_password == SECRET
    await made.stop()
    await consumer.stop()
    await admin.close()
    with pytest.raises(ValueError, match="ssl_context"):  # the check these arguments pass
        aiokafka.AIOKafkaConsumer(
            "t", bootstrap_servers="broker.invalid:9093", security_protocol="SASL_SSL"
        )


# --- the worker and every client of the package ---------------------------------------------


def worker_settings(tmp_path: Path, env: dict[str, str]) -> Settings:
    return load_settings(
        {
            "JOURNEY_STORE": "memory://",
            "JOURNEY_DATA_DIR": str(tmp_path / "worker"),
            "JOURNEY_POLICY_FILE": str(ROOT / "policies" / "default.yaml"),
            **env,
        }
    )


def test_a_sasl_ssl_worker_app_carries_the_credentials(
    tmp_path: Path, password_file: Path, pki: Pki
) -> None:
    settings = worker_settings(
        tmp_path,
        scram_over_tls(password_file, pki),
    )
    app = create_faust_app(settings)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("journey", SECRET)
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    # the arguments Faust's aiokafka driver gives the worker's producer (and consumers)
    auth = app.producer._settings_auth()
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_password"] == SECRET and auth["ssl_context"] is credentials.ssl_context


def test_a_plaintext_worker_app_has_no_credentials(tmp_path: Path) -> None:
    app = create_faust_app(worker_settings(tmp_path, {}))
    assert app.conf.broker_credentials is None
    assert app.producer._settings_auth() == {"security_protocol": "PLAINTEXT"}


class Stop(Exception):
    """Raised by a fake client once its arguments are recorded: no broker is contacted."""


class Recorded:
    """The keyword arguments every fake aiokafka client was made with, by call site."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def consumer(self, site: str) -> type:
        calls = self.calls

        class FakeConsumer:
            def __init__(self, *topics: str, **kwargs: Any) -> None:
                calls.append((site, kwargs))

            async def start(self) -> None:
                """Nothing to connect to."""

            async def stop(self) -> None:
                """Nothing to close."""

            def assignment(self) -> set[Any]:
                raise Stop

            async def getmany(self, **kwargs: Any) -> dict[Any, Any]:
                raise Stop

        return FakeConsumer

    def refused(self, site: str) -> type:
        calls = self.calls

        class FakeClient:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                calls.append((site, kwargs))
                raise Stop

        return FakeClient

    def admin(self, site: str, existing: list[str]) -> type:
        calls = self.calls

        class FakeAdmin:
            def __init__(self, **kwargs: Any) -> None:
                calls.append((site, kwargs))

            async def start(self) -> None:
                """Nothing to connect to."""

            async def close(self) -> None:
                """Nothing to close."""

            async def list_topics(self) -> list[str]:
                return existing

            async def describe_topics(self, names: list[str]) -> list[Any]:
                raise Stop

        return FakeAdmin

    def connection(self, site: str) -> Callable[..., Awaitable[Any]]:
        calls = self.calls

        class FakeConnection:
            def close(self) -> None:
                """Nothing to close."""

        async def create_conn(host: str, port: int, **kwargs: Any) -> FakeConnection:
            calls.append((site, {"bootstrap_servers": f"{host}:{port}", **kwargs}))
            return FakeConnection()

        return create_conn


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    """Every aiokafka client the package makes, replaced by a recording fake."""
    record = Recorded()
    monkeypatch.setattr(kafka_security, "create_conn", record.connection("broker check"))
    monkeypatch.setattr(model_view, "AIOKafkaConsumer", record.consumer("model view / report"))
    monkeypatch.setattr(watch, "AIOKafkaConsumer", record.consumer("watch"))
    monkeypatch.setattr(forget, "AIOKafkaConsumer", record.consumer("forget consumer"))
    monkeypatch.setattr(forget, "AIOKafkaProducer", record.refused("forget producer"))
    # every topic exists: `journey topics` stops at its wait, the other commands pass their check
    admin = record.admin("topics admin", topics.every_topic(load_settings({}).topics))
    monkeypatch.setattr(topics, "AIOKafkaAdminClient", admin)
    monkeypatch.setattr(lag, "AIOKafkaAdminClient", record.refused("lag admin"))
    monkeypatch.setattr(producer, "AIOKafkaProducer", record.refused("simulate producer"))
    monkeypatch.setattr(sender, "AIOKafkaConsumer", record.consumer("sender consumer"))
    monkeypatch.setattr(sender, "AIOKafkaProducer", record.refused("sender producer"))
    return record


def run_every_client(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every Kafka client of the package from these settings: the worker's model view
    and lag monitor, and each CLI command (which reads the JOURNEY_* environment)."""
    settings = worker_settings(tmp_path, env)
    journey = create_app(settings)
    with pytest.raises(Stop):
        asyncio.run(journey.model_view._follow())
    monitor = lag.LagMonitor(journey.app, settings.broker, settings.app_id, [], Metrics(), set)
    with pytest.raises(Stop):
        asyncio.run(monitor.run(1.0))
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for argv in (
        ["report", "model"],
        ["watch", "--quiet"],
        ["topics"],
        ["forget", "--customer", "c1"],
        ["simulate", "--events", "1"],
        ["sender", "--duration", "1"],
    ):
        with pytest.raises(Stop):
            cli.main(argv)


EVERY_SITE = {
    "broker check",
    "model view / report",
    "lag admin",
    "watch",
    "topics admin",
    "forget consumer",
    "forget producer",
    "simulate producer",
    "sender consumer",
    "sender producer",
}


def test_a_plaintext_workers_clients_get_no_security_arguments(
    tmp_path: Path, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_every_client(tmp_path, {}, monkeypatch)
    assert {site for site, _ in recorded.calls} == EVERY_SITE
    for site, kwargs in recorded.calls:
        assert not SECURITY_KEYS & set(kwargs), site
        assert kwargs["bootstrap_servers"] == "127.0.0.1:9092", site


def test_every_client_of_a_sasl_ssl_worker_authenticates_over_tls(
    tmp_path: Path,
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
    password_file: Path,
    pki: Pki,
) -> None:
    env = sasl_env(
        password_file,
        "SASL_SSL",
        JOURNEY_SASL_MECHANISM="SCRAM-SHA-512",
        JOURNEY_SSL_CAFILE=str(pki.ca),
    )
    run_every_client(tmp_path, env, monkeypatch)
    assert {site for site, _ in recorded.calls} == EVERY_SITE
    # the model topic is read by the worker and the report; five commands check their topics
    assert len([site for site, _ in recorded.calls if site != "broker check"]) == 10 + 5
    for site, kwargs in recorded.calls:
        assert kwargs["security_protocol"] == "SASL_SSL", site
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512", site
        assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
            "journey",
            SECRET,
        ), site
        assert kwargs["ssl_context"].get_ca_certs()[0]["subject"][0][0][1] == "journey-test-ca"


def test_the_cli_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOURNEY_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("JOURNEY_SASL_USERNAME", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["topics"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "journey topics: JOURNEY_SECURITY_PROTOCOL=SASL_SSL needs JOURNEY_SASL_USERNAME\n"
    )


# --- the pre-flight: what a refusing broker makes the worker and the CLI say ---------------


class FakeBroker:
    """``create_conn`` of a broker that answers each attempt with the next of ``answers``
    (an exception to raise, or None to accept); the last answer repeats."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers)
        self.attempts: list[dict[str, Any]] = []
        self.closed = 0

    async def create_conn(self, host: str, port: int, **kwargs: Any) -> FakeBroker:
        self.attempts.append({"address": f"{host}:{port}", **kwargs})
        answer = self.answers[min(len(self.attempts), len(self.answers)) - 1]
        if answer is not None:
            raise answer
        return self

    def close(self) -> None:
        self.closed += 1


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    """The error Python's ssl module raises when the broker's certificate fails a check."""
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code, error.verify_message = code, message
    return error


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        (
            aiokafka.errors.SaslAuthenticationFailed(
                "Authentication failed during authentication due to invalid credentials with "
                "SASL mechanism SCRAM-SHA-512"
            ),
            "JOURNEY_SASL_USERNAME/JOURNEY_SASL_PASSWORD(_FILE): SASL authentication failed: "
            "the broker at broker.example:9093 refused user 'journey' with SCRAM-SHA-512 "
            "(Authentication failed during authentication due to invalid credentials",
        ),
        (
            verify_error(20, "unable to get local issuer certificate"),
            "JOURNEY_SSL_CAFILE: TLS certificate verification failed for the broker at "
            "broker.example:9093: unable to get local issuer certificate; trusted: ",
        ),
        (
            verify_error(62, "Hostname mismatch, certificate is not valid for 'broker.example'"),
            "JOURNEY_BROKER: the TLS certificate of the broker at broker.example:9093 is not "
            "valid for that host",
        ),
        (
            aiokafka.errors.UnsupportedSaslMechanismError("the connection"),
            "JOURNEY_SASL_MECHANISM=SCRAM-SHA-512: the broker at broker.example:9093 does not "
            "offer this SASL mechanism",
        ),
        (
            ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert certificate required"),
            "JOURNEY_SECURITY_PROTOCOL=SASL_SSL: the TLS handshake with the broker at "
            "broker.example:9093 failed",
        ),
    ],
    ids=["wrong-password", "untrusted-ca", "host-name", "mechanism", "tls-handshake"],
)
async def test_a_refusing_broker_ends_the_check_at_once_naming_the_setting(
    refusal: BaseException,
    message: str,
    password_file: Path,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = FakeBroker(refusal)
    monkeypatch.setattr(kafka_security, "create_conn", broker.create_conn)
    settings = load_settings(
        {**scram_over_tls(password_file, pki), "JOURNEY_BROKER": "broker.example:9093"}
    )
    with pytest.raises(BrokerAccessError) as refused:
        await check_broker_access(settings, timeout_s=60)
    assert str(refused.value).startswith(message)
    assert SECRET not in str(refused.value)
    assert len(broker.attempts) == 1  # no retry: it would be refused again
    assert broker.attempts[0]["sasl_plain_password"] == SECRET  # the settings' own arguments
    assert broker.attempts[0]["ssl_context"].verify_mode == ssl.CERT_REQUIRED


async def test_an_unreachable_broker_is_retried_until_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = FakeBroker(ConnectionRefusedError(111, "Connect call failed"))
    monkeypatch.setattr(kafka_security, "create_conn", broker.create_conn)
    monkeypatch.setattr(kafka_security, "RETRY_EVERY_S", 0.01)
    with pytest.raises(BrokerAccessError, match=r"^JOURNEY_BROKER: no broker answered at "):
        await check_broker_access(load_settings({}), timeout_s=0.1)
    assert len(broker.attempts) >= 2


async def test_a_broker_that_comes_up_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = FakeBroker(ConnectionRefusedError(111, "Connect call failed"), ssl.SSLEOFError(), None)
    monkeypatch.setattr(kafka_security, "create_conn", broker.create_conn)
    monkeypatch.setattr(kafka_security, "RETRY_EVERY_S", 0.01)
    await check_broker_access(load_settings({}), timeout_s=60)
    assert (len(broker.attempts), broker.closed) == (3, 1)


def test_the_cli_ends_on_a_refused_password_with_one_line(
    password_file: Path,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker = FakeBroker(aiokafka.errors.SaslAuthenticationFailed("invalid credentials"))
    monkeypatch.setattr(kafka_security, "create_conn", broker.create_conn)
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    for name, value in scram_over_tls(password_file, pki).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        cli.main(["topics"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("journey topics: JOURNEY_SASL_USERNAME/JOURNEY_SASL_PASSWORD(_FILE): ")
    assert err.count("\n") == 1 and "Traceback" not in err
