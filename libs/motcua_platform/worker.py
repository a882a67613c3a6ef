"""Run a service's nameko worker (event handlers, RPC, timers).

Called by `motcua worker --service <svc>` after eventlet's monkey patching."""
from __future__ import annotations

import importlib
import os
import logging
import signal

import eventlet

from motcua_common import metrics
from motcua_common import topology
from motcua_common.config import Settings, nameko_config
from motcua_common.logs import configure_logging
from motcua_common.tracing import configure_tracing

log = logging.getLogger(__name__)


def run(service: str) -> None:
    from nameko.runners import ServiceRunner

    settings = Settings.from_env()
    configure_logging(service, "worker", settings.log_level)
    configure_tracing(service, "worker")
    # MOTCUA_WORKER_MODULE lets tests run a probe service under the real runner.
    module = importlib.import_module(os.environ.get("MOTCUA_WORKER_MODULE") or f"motcua_{service}.worker")
    # Declare the whole topology before consuming anything (see topology.py).
    topology.declare_with_url(settings)
    runner = ServiceRunner(nameko_config(settings))
    for cls in module.SERVICES:
        runner.add_service(cls)
    metrics.serve_worker_metrics(service, "worker")

    stopping = []

    def _stop(*_args):
        # Signal handlers must not block: stop the runner from a green thread, the way
        # nameko's own `run` command does; runner.wait() below then returns. Only once:
        # Ctrl-C reaches every process of the terminal's group and `motcua up` then
        # stops its children too, and a second stop racing the first makes nameko's
        # timers and RPC consumers fail with tracebacks.
        if stopping:
            return
        stopping.append(True)
        eventlet.spawn_n(_graceful_stop, runner)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    log.info("worker started")
    waiter = eventlet.spawn(runner.wait)
    while True:
        try:
            waiter.wait()
            break
        except OSError:  # interrupted system call while the hub waited
            continue
    log.info("worker stopped")


def _graceful_stop(runner) -> None:
    log.info("worker stopping")
    with eventlet.Timeout(20, False):
        runner.stop()
        return
    runner.kill()
