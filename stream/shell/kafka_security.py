"""SASL and TLS for every Kafka client: the worker's Faust app and the package's own clients.

``JOURNEY_SECURITY_PROTOCOL`` and its companions (see ``stream/config.py``) become Faust's
``broker_credentials`` for the worker's consumers and producer, and the keyword arguments of
the aiokafka clients the package creates beside them (the model view, the lag monitor and
the CLI tools). ``PLAINTEXT`` gives no credentials and no arguments: nothing changes for a
local broker.

Faust is imported only where Faust credentials are made or read: the CLI tools use
``client_kwargs`` alone and start without it.

``check_broker_access`` is the pre-flight of the worker and the CLI tools (run by
``stream/shell/topics.py`` before the topics are created or looked up): one connection with
these settings before any other client starts, so that a wrong password, an untrusted
certificate or a mechanism the broker does not offer ends the process at once with one line
naming the setting to fix, instead of retries that look like an unreachable broker.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import errors as kafka_errors  # type: ignore[import-untyped]
from aiokafka.conn import collect_hosts, create_conn  # type: ignore[import-untyped]
from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped]

from stream.config import Settings, SettingsError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

log = logging.getLogger(__name__)

RETRY_EVERY_S = 1.0  # between two attempts to reach a broker that does not answer
X509_V_ERR_HOSTNAME_MISMATCH = 62  # OpenSSL's verify code of a certificate for another host


class BrokerAccessError(SettingsError):
    """The broker refused these settings (credentials, certificate, protocol): a setting to
    fix, which no retry cures. The CLI prints it on one line and exits with 2."""


def _no_key_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's password.
    raise SettingsError("JOURNEY_SSL_KEYFILE is encrypted: give the worker an unencrypted key")


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of ``SSL`` and ``SASL_SSL``: the broker's certificate and host name are
    checked against ``JOURNEY_SSL_CAFILE`` (default: the system's CAs); the client certificate
    is presented if ``JOURNEY_SSL_CERTFILE`` is set."""
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=settings.ssl_cafile)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"JOURNEY_SSL_CAFILE: no CA certificate loaded from {settings.ssl_cafile} ({exc})"
        ) from None
    if settings.ssl_certfile is not None:
        try:
            context.load_cert_chain(
                settings.ssl_certfile, settings.ssl_keyfile, password=_no_key_password
            )
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"JOURNEY_SSL_CERTFILE/JOURNEY_SSL_KEYFILE: no client certificate and key "
                f"loaded from {settings.ssl_certfile}"
                f"{f' and {settings.ssl_keyfile}' if settings.ssl_keyfile else ''} ({exc})"
            ) from None
    return context


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for ``faust.App``: None for ``PLAINTEXT``."""
    import faust

    if settings.uses_sasl:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            # with a context Faust's protocol is SASL_SSL, without one SASL_PLAINTEXT
            ssl_context=ssl_context(settings) if settings.uses_tls else None,
        )
    if settings.uses_tls:
        return faust.SSLCredentials(ssl_context(settings))
    return None


def credentials_client_kwargs(credentials: CredentialsT | None) -> dict[str, Any]:
    """The aiokafka keyword arguments of Faust credentials (``{}`` for none): exactly what
    Faust gives the worker's own consumers and producer."""
    if credentials is None:
        return {}
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(credentials))


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (consumer, producer, admin) of these settings:
    ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
    ``sasl_plain_password`` and ``ssl_context`` as the protocol needs; ``{}`` for PLAINTEXT.

    The same arguments Faust derives from ``broker_credentials`` (a test holds them equal).
    """
    kwargs: dict[str, Any] = {}
    if settings.security_protocol != "PLAINTEXT":
        kwargs["security_protocol"] = settings.security_protocol
    if settings.uses_sasl:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username  # aiokafka's name for SCRAM too
        kwargs["sasl_plain_password"] = settings.sasl_password
    if settings.uses_tls:
        kwargs["ssl_context"] = ssl_context(settings)
    return kwargs


def _broker_said(exc: kafka_errors.KafkaError) -> str:
    """The broker's own error message if it sent one, else the error's description."""
    return str(exc.args[0]) if exc.args and exc.args[0] else str(getattr(exc, "description", exc))


def _refusal(settings: Settings, address: str, exc: BaseException) -> BrokerAccessError | None:
    """The error naming the setting to fix if ``exc`` is one no retry cures, else None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == X509_V_ERR_HOSTNAME_MISMATCH:
            return BrokerAccessError(
                f"JOURNEY_BROKER: the TLS certificate of the broker at {address} is not valid "
                f"for that host ({exc.verify_message}); use a host name the certificate names"
            )
        trusted = settings.ssl_cafile or "the system's CAs (JOURNEY_SSL_CAFILE is not set)"
        return BrokerAccessError(
            f"JOURNEY_SSL_CAFILE: TLS certificate verification failed for the broker at "
            f"{address}: {exc.verify_message}; trusted: {trusted}. Set JOURNEY_SSL_CAFILE to "
            "the CA certificate that signed the broker's certificate"
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        reason = getattr(exc, "reason", None) or exc  # OpenSSL's short name, if it gave one
        return BrokerAccessError(
            f"JOURNEY_SECURITY_PROTOCOL={settings.security_protocol}: the TLS handshake with "
            f"the broker at {address} failed ({reason}); check that it is a TLS listener "
            "and, if it asks for a client certificate, JOURNEY_SSL_CERTFILE"
        )
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return BrokerAccessError(
            f"JOURNEY_SASL_USERNAME/JOURNEY_SASL_PASSWORD(_FILE): SASL authentication failed: "
            f"the broker at {address} refused user {settings.sasl_username!r} with "
            f"{settings.sasl_mechanism} ({_broker_said(exc)}); check the user name, the "
            "password and JOURNEY_SASL_MECHANISM"
        )
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return BrokerAccessError(
            f"JOURNEY_SASL_MECHANISM={settings.sasl_mechanism}: the broker at {address} does "
            "not offer this SASL mechanism on this listener"
        )
    if isinstance(exc, kafka_errors.IllegalSaslStateError):
        return BrokerAccessError(
            f"JOURNEY_SECURITY_PROTOCOL={settings.security_protocol}: the SASL handshake with "
            f"the broker at {address} failed ({exc}); is it a SASL listener?"
        )
    return None


async def check_broker_access(settings: Settings, timeout_s: float = 60.0) -> None:
    """Returns once a bootstrap server has accepted a connection made with these settings
    (TCP, TLS handshake and certificate check, SASL authentication, an API versions request).

    Raises ``BrokerAccessError`` at once, naming the setting to fix, when the broker refuses
    the credentials or the certificate is not trusted; an unreachable broker is retried until
    ``timeout_s`` has passed, then ``BrokerAccessError`` names JOURNEY_BROKER.
    """
    security = client_kwargs(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        last_error: BaseException | None = None
        for host, port, _ in collect_hosts(settings.broker):
            address = f"{host}:{port}"
            remaining_ms = max(1000, int((deadline - loop.time()) * 1000))
            try:
                connection = await create_conn(
                    host, port, request_timeout_ms=min(10_000, remaining_ms), **security
                )
            except (TimeoutError, OSError, kafka_errors.KafkaError) as exc:
                refusal = _refusal(settings, address, exc)
                if refusal is not None:
                    raise refusal from None
                last_error = exc
                continue
            connection.close()
            return
        if loop.time() >= deadline:
            raise BrokerAccessError(
                f"JOURNEY_BROKER: no broker answered at {settings.broker} within {timeout_s:g} s "
                f"(last error: {last_error!r}); check JOURNEY_BROKER and "
                "JOURNEY_SECURITY_PROTOCOL"
            )
        log.warning("broker %s not reachable yet (%r), retrying", settings.broker, last_error)
        await asyncio.sleep(RETRY_EVERY_S)
