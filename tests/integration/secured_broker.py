"""A SASL_SSL broker for the security tests, started from the same jars as the shared one.

``deploy/local/kafka.sh`` starts it with its own run directory and free ports. The
template's PLAINTEXT listener stays on loopback for the broker's own traffic and for
kafka.sh's readiness check; ``KAFKA_EXTRA_PROPERTIES`` adds the listener the clients under
test use: SASL_SSL with SCRAM-SHA-512. The certificates are made at test time with
``trustme`` (a CA and a server certificate for IP 127.0.0.1 and DNS localhost, as PEM files:
no keytool), and the SCRAM user is written into the metadata log when kafka.sh formats the
storage (``KAFKA_ADD_SCRAM``), so it exists before the broker answers.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives.serialization import (  # trustme's own dependency
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from tests.integration.conftest import free_port
from tests.integration.private_broker import kafka_down, kafka_up

MECHANISM = "SCRAM-SHA-512"


def write_ca(directory: Path, name: str) -> tuple[trustme.CA, Path]:
    """A new certificate authority and its certificate written as ``name`` (PEM)."""
    ca = trustme.CA(organization_name=f"Journey Stream tests: {name}")
    path = directory / name
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def write_keystore(ca: trustme.CA, path: Path) -> Path:
    """The broker's PEM keystore: a PKCS#8 key (the form Kafka reads) and the certificate
    chain for 127.0.0.1 and localhost, so clients' host-name checks pass."""
    server = ca.issue_cert("127.0.0.1", "localhost")
    key = load_pem_private_key(server.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return path


@dataclass
class SecuredBroker:
    """A single-node KRaft broker with a SASL_SSL listener on ``port``, and its client side:
    the CA file that trusts it and one SCRAM user."""

    directory: Path
    port: int
    internal_port: int  # PLAINTEXT, loopback: the broker's own traffic and kafka.sh status
    controller_port: int
    ca_file: Path
    keystore: Path
    username: str
    password: str

    @classmethod
    def create(cls, directory: Path) -> SecuredBroker:
        """Certificates, a user and free ports for a broker in ``directory`` (not started)."""
        ca, ca_file = write_ca(directory, "ca.pem")
        return cls(
            directory=directory,
            port=free_port(),
            internal_port=free_port(),
            controller_port=free_port(),
            ca_file=ca_file,
            keystore=write_keystore(ca, directory / "broker-keystore.pem"),
            username="journey-worker",
            password=secrets.token_urlsafe(18),
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "run" / "logs" / "server.out"

    def server_properties(self) -> str:
        """The lines kafka.sh appends to its template (a later key overrides an earlier one)."""
        listener = "listener.name.sasl_ssl"
        return "\n".join(
            [
                f"listeners=PLAINTEXT://127.0.0.1:{self.internal_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port},"
                f"SASL_SSL://127.0.0.1:{self.port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.internal_port},"
                f"SASL_SSL://127.0.0.1:{self.port}",
                "listener.security.protocol.map="
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
                f"sasl.enabled.mechanisms={MECHANISM}",
                f"{listener}.{MECHANISM.lower()}.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                f"{listener}.ssl.keystore.type=PEM",
                f"{listener}.ssl.keystore.location={self.keystore}",
            ]
        )

    def kafka_env(self) -> dict[str, str]:
        """The environment of ``kafka.sh up|down`` for this broker; broker properties the run
        asks for (``tests/run_shifted.sh``: timestamps far from the broker's clock) are kept."""
        inherited = os.environ.get("KAFKA_EXTRA_PROPERTIES", "")
        return {
            **os.environ,
            "KAFKA_RUN_DIR": str(self.directory / "run"),
            "KAFKA_PORT": str(self.internal_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_EXTRA_PROPERTIES": "\n".join(
                filter(None, [inherited, self.server_properties()])
            ),
            "KAFKA_ADD_SCRAM": f"{MECHANISM}=[name={self.username},password={self.password}]",
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m",
        }

    def start(self) -> None:
        """Format, start and wait until the broker answers (kafka.sh stops it on failure)."""
        kafka_up(self.kafka_env(), f"secured broker (log: {self.log_path})", self.stop)

    def stop(self) -> None:
        """Stop the broker by the PID kafka.sh recorded (a no-op if it is not running)."""
        kafka_down(self.kafka_env(), self.directory / "run" / "kafka.pid")

    def client_env(
        self, password: str | None = None, ca_file: Path | None = None
    ) -> dict[str, str]:
        """The JOURNEY_* settings of a client of this broker; another password or CA file
        for the tests of what the product says when they are wrong."""
        password_file = self.directory / f"password-{secrets.token_hex(4)}"
        password_file.write_text((self.password if password is None else password) + "\n")
        return {
            "JOURNEY_BROKER": self.bootstrap,
            "JOURNEY_SECURITY_PROTOCOL": "SASL_SSL",
            "JOURNEY_SASL_MECHANISM": MECHANISM,
            "JOURNEY_SASL_USERNAME": self.username,
            "JOURNEY_SASL_PASSWORD_FILE": str(password_file),
            "JOURNEY_SSL_CAFILE": str(ca_file or self.ca_file),
        }
