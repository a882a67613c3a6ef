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
