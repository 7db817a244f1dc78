"""SASL and TLS for every Kafka client: the worker's Faust app and the package's own clients.

``JOURNEY_SECURITY_PROTOCOL`` and its companions (see ``stream/config.py``) become Faust's
``broker_credentials`` for the worker's consumers and producer, and the keyword arguments of
the aiokafka clients the package creates beside them (the model view, the lag monitor and
the CLI tools). ``PLAINTEXT`` gives no credentials and no arguments: nothing changes for a
local broker.

Faust is imported only where Faust credentials are made or read: the CLI tools use
``client_kwargs`` alone and start without it.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

from stream.config import Settings, SettingsError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


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
