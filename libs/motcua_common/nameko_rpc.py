"""Answering other services (nameko RPC) in a way that survives the loss of a broker node.

nameko declares a service's request queue `rpc-<service>` as a classic queue: in a
RabbitMQ cluster it lives on one node, and when that node is lost every call to the service
fails ("home node is down") until the node is back. Here the request queue is a quorum
queue when the platform's queues are (Settings.queue_type): its replicas on the other nodes
elect a leader and the service answers again within seconds.

Reply queues are not quorum queues: a caller's reply queue lives for one call
(motcua_common.rpc makes a new one per call, on the node its connection reached) or for one
worker process (RpcProxy); a replicated log is not worth it for one answer, and a quorum
queue cannot be auto-deleted. A call in flight when its reply queue's node dies times out
(RpcUnavailable, a 503 for the client to retry). A worker's reply queue (RpcProxy) is
declared here non-durable: the cluster deletes a lost node's non-durable queues, so the
worker, reconnecting, declares it anew on a node that is up — nameko's durable one would
answer "home node is down" to that declaration until the node came back.

Services mark their RPC methods with `rpc` and ask others through `RpcProxy`, both from
here instead of nameko's.

Upgrading a broker where `rpc-<service>` exists as a classic queue (the broker refuses to
change a queue's type): a worker that finds it with no consumer deletes it — it can hold only
requests whose callers stopped waiting (5 s) — and declares the quorum queue. While older
workers still consume it (a rolling upgrade), the worker uses it as it is and says so; delete
it once they are gone (`rabbitmqctl delete_queue rpc-<service>`) and restart the workers."""
from __future__ import annotations

import logging

from kombu import Queue
from nameko.rpc import ReplyListener as _ReplyListener
from nameko.rpc import Rpc as _Rpc
from nameko.rpc import RpcConsumer as _RpcConsumer
from nameko.rpc import RpcProxy as _RpcProxy


log = logging.getLogger(__name__)


def quorum_request_queue(amqp_url: str, name: str) -> bool:
    """Declare `name` as a quorum queue; True once it is one. An older classic queue of that
    name with no consumer is deleted first; one still consumed (older workers) is kept, and
    False says to use it as it is."""
    import pika
    import pika.exceptions

    quorum = {"x-queue-type": "quorum"}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        try:
            channel.queue_declare(name, durable=True, arguments=quorum)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:  # PRECONDITION_FAILED: it exists as another type
                raise
        channel = connection.channel()
        existing = channel.queue_declare(name, passive=True).method
        if existing.consumer_count == 0:
            channel.queue_delete(name, if_unused=True)
            channel.queue_declare(name, durable=True, arguments=quorum)
            log.info("RPC queue %s was a classic queue with no consumer (%d stale requests): now a quorum queue",
                     name, existing.message_count)
            return True
        log.warning("RPC queue %s is a classic queue consumed by %d older worker(s): it is used as it is, and "
                    "is lost with its broker node; once they are gone, rabbitmqctl delete_queue %s and restart "
                    "the workers", name, existing.consumer_count, name)
        return False
    finally:
        connection.close()


class QuorumRpcConsumer(_RpcConsumer):
    def setup(self):
        declared = self.queue is not None
        super().setup()
        settings = self.container.config.get("MOTCUA_SETTINGS")
        if declared or settings is None or settings.queue_type != "quorum":
            return
        if not quorum_request_queue(settings.amqp_url, self.queue.name):
            return
        # The same queue nameko would declare (name, exchange, binding, durable), of type
        # quorum. Read by nameko's queue consumer at each (re)connection.
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                           durable=True, queue_arguments={"x-queue-type": "quorum"})


class Rpc(_Rpc):
    rpc_consumer = QuorumRpcConsumer()


rpc = Rpc.decorator


class TransientReplyListener(_ReplyListener):
    def setup(self):
        super().setup()
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                           durable=False, queue_arguments=self.queue.queue_arguments)


class RpcProxy(_RpcProxy):
    rpc_reply_listener = TransientReplyListener()
