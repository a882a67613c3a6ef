"""buf: proto/ passes lint (proto/buf.yaml) and makes no breaking change against the last
release's image (proto/baseline.binpb; refresh it only when cutting a release)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from motcua_testing import asyncapi

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "proto"
BASELINE = PROTO / "baseline.binpb"
EVENTS = Path("motcua/events/v1/events.proto")


def _buf(*args, cwd=ROOT):
    buf = asyncapi.require_node_tool("buf", "@bufbuild/buf")
    return subprocess.run([buf, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_buf_lint():
    result = _buf("lint", "proto")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_baseline():
    assert BASELINE.exists(), "proto/baseline.binpb: buf build proto --exclude-source-info -o proto/baseline.binpb"
    result = _buf("breaking", "proto", "--against", "proto/baseline.binpb")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_renumbered_field_is_a_breaking_change(tmp_path):
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy)
    source = (copy / EVENTS).read_text(encoding="utf-8")
    assert "  string age_band = 4;" in source
    (copy / EVENTS).write_text(source.replace("  string age_band = 4;", "  string age_band = 5;"), encoding="utf-8")
    result = _buf("breaking", str(copy), "--against", str(BASELINE), cwd=tmp_path)
    assert result.returncode != 0
    assert "CitizenRegistered" in result.stdout + result.stderr


def test_the_baseline_is_an_image_of_a_compatible_schema():
    """Every message of the baseline is still in proto/ (what `buf breaking` relies on)."""
    from google.protobuf import descriptor_pb2

    from motcua_common import events_pb2

    image = descriptor_pb2.FileDescriptorSet.FromString(BASELINE.read_bytes())
    [events] = [f for f in image.file if f.name == str(EVENTS)]
    assert {m.name for m in events.message_type} <= set(events_pb2.DESCRIPTOR.message_types_by_name)
