"""A local HTTP SMS gateway for tests: records what notify sends (CONTRACT.md, outbound SMS)
and can be told to fail the next N requests with a status. The same one `motcua simulate`
uses (one gateway, not two)."""
from motcua_platform.simulate import RecordingGateway

__all__ = ["RecordingGateway"]
