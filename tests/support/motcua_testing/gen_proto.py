"""Regenerate the event classes from proto/ with grpcio-tools' protoc.

    PYTHONPATH=tests/support python -m motcua_testing.gen_proto          # writes libs/motcua_common/events_pb2.py
    PYTHONPATH=tests/support python -m motcua_testing.gen_proto --check  # exit 1 if the committed file drifted

The generated module is committed so that installing the platform needs no protoc;
tests/test_proto_drift.py fails when it and the .proto disagree.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# The source tree, not an installed copy: this tool regenerates a committed file.
ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "motcua/events/v1/events.proto"
TARGET = ROOT / "libs" / "motcua_common" / "events_pb2.py"


def generate() -> bytes:
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    with tempfile.TemporaryDirectory() as out:
        code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}", PROTO_FILE])
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        return (Path(out) / PROTO_FILE.replace(".proto", "_pb2.py")).read_bytes()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    generated = generate()
    if "--check" in argv:
        if TARGET.read_bytes() != generated:
            print(f"{TARGET} is out of date: run PYTHONPATH=tests/support python -m motcua_testing.gen_proto", file=sys.stderr)
            return 1
        return 0
    TARGET.write_bytes(generated)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
