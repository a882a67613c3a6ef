"""Asking another service now (nameko RPC over the broker), from outside a nameko worker —
e.g. a Flask request. Inside a worker use nameko's RpcProxy dependency instead."""
from __future__ import annotations

import threading

from .config import Settings
from .config import nameko_config


class RpcUnavailable(Exception):
    """The other service did not answer in time (down, or the broker is)."""


class RpcTimedOut(RpcUnavailable):
    """The request reached the broker but no answer came in time: the service may only be
    busy, so asking again (a read) can succeed where "not running" cannot."""


_local = threading.local()


def call(settings: Settings, service: str, method: str, *args, timeout: float = 5.0, **kwargs):
    from amqp.exceptions import AMQPError
    from kombu.exceptions import KombuError
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {k: v for k, v in nameko_config(settings).items() if k != "MOTCUA_SETTINGS"}
    try:
        with ClusterRpcProxy(config, timeout=timeout) as cluster:
            return getattr(getattr(cluster, service), method)(*args, **kwargs)
    except RpcTimeout as exc:
        raise RpcTimedOut(f"{service}.{method} did not answer in {timeout:.0f} s") from exc
    except UnknownService as exc:
        raise RpcUnavailable(f"{service} is not running") from exc
    except (OSError, ConnectionError) as exc:
        raise RpcUnavailable(f"{service}.{method}: broker unreachable") from exc
    except (AMQPError, KombuError) as exc:
        # The broker refused something on the way: seen when a cluster node was lost during a
        # call — nameko, reconnecting, declares the call's reply queue again and the broker
        # answers 404 "home node is down". A 503 for the client to retry (the next call makes
        # a new reply queue on a node that is up), never a 500.
        raise RpcUnavailable(f"{service}.{method}: refused by the broker ({exc.__class__.__name__})") from exc
