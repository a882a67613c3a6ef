"""Before a command touches the database or the broker: are they there? One clear line
naming what is down and how to start it, and an exit code of its own, instead of a
traceback thirty seconds later."""
from __future__ import annotations

import socket
from urllib.parse import urlparse

# sysexits.h: EX_UNAVAILABLE, "a service is unavailable". argparse keeps 2 for bad usage.
EXIT_UNAVAILABLE = 69
# A launch that failed for another reason (port taken, a child never ready).
EXIT_FAILED = 1


class Unavailable(Exception):
    """A backing service cannot be reached; the message says which and what to do."""


def _where(url: str, default_port: int) -> tuple[str, int]:
    # A MongoDB URL may list several hosts; the first names the server well enough.
    parsed = urlparse(url.replace(",", "/", 1) if "," in url.split("@")[-1].split("/")[0] else url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def check_database(mongo_url: str, timeout: float = 3.0) -> None:
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

    host, port = _where(mongo_url, 27017)
    try:
        client = MongoClient(mongo_url, serverSelectionTimeoutMS=int(timeout * 1000),
                             connectTimeoutMS=int(timeout * 1000))
    except ConfigurationError as exc:
        raise Unavailable(f"MONGO_URL is not a valid MongoDB address: {exc}") from None
    try:
        client.admin.command("ping")
    except OperationFailure as exc:
        raise Unavailable(f"the database at {host}:{port} (MONGO_URL) refused us: {exc.details.get('errmsg', exc)}; "
                          "check the user and password in MONGO_URL") from None
    except PyMongoError:
        raise Unavailable(f"the database at {host}:{port} (MONGO_URL) is not reachable: start MongoDB there, "
                          "or leave MONGO_URL unset so that `motcua up` runs the embedded database") from None
    finally:
        client.close()


def check_broker(amqp_url: str, timeout: float = 3.0) -> None:
    import pika
    from pika.exceptions import AMQPError, ProbableAccessDeniedError, ProbableAuthenticationError

    host, port = _where(amqp_url, 5672)
    local = host in ("127.0.0.1", "localhost", "::1")
    how = ("start it with `rabbitmq-server -detached` (Debian: apt-get install rabbitmq-server)" if local
           else "check that the broker runs and that this machine may reach it")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        raise Unavailable(f"the broker at {host}:{port} (AMQP_URL) is not reachable: {how}") from None
    try:
        params = pika.URLParameters(amqp_url)
        params.socket_timeout = timeout
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()
    except (ProbableAuthenticationError, ProbableAccessDeniedError):
        raise Unavailable(f"the broker at {host}:{port} (AMQP_URL) refused the login or the virtual host: "
                          "check the user, password and vhost in AMQP_URL") from None
    except AMQPError:
        raise Unavailable(f"the broker at {host}:{port} (AMQP_URL) does not answer AMQP yet: {how}") from None
