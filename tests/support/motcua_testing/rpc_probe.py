"""A probe service for the cluster fault (tests/chaos/test_chaos_cluster.py), run by the
real worker runner (`MOTCUA_WORKER_MODULE=motcua_testing.rpc_probe motcua worker`): it asks
identity through a worker's RpcProxy, as notify does, so a call to `relay_ward` crosses
both kinds of reply queue — the caller's (one per call) and this worker's (one per
process) — and two request queues, the probe's and identity's."""
from __future__ import annotations

from motcua_common.nameko_rpc import RpcProxy, rpc


class RpcProbe:
    name = "rpc_probe"
    identity = RpcProxy("identity")

    @rpc
    def relay_ward(self, ward_id: str) -> dict | None:
        return self.identity.ward(ward_id)


SERVICES = [RpcProbe]
