"""Keys every replica of an API must share: dossier's result-signing authority and queue's
kiosk device key. Made once by `motcua new-keys`, kept in the service's Secret, mounted
read-only where the service reads them (chart), kept on a volume on one Docker host."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from motcua_dossier.signing_keys import ResultKeys
from motcua_queue.devices import DeviceKeys, KioskDevice

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def central(render):
    return render("values-central.yaml")


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def test_new_keys_writes_keys_the_services_load_and_never_replaces_them(tmp_path, monkeypatch):
    run = [sys.executable, "-m", "motcua_platform.cli", "new-keys", str(tmp_path / "keys")]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    ca_file, kiosk_file = tmp_path / "keys" / "result-ca.pem", tmp_path / "keys" / "kiosk-device.key"
    assert ca_file.stat().st_mode & 0o077 == 0 and kiosk_file.stat().st_mode & 0o077 == 0
    before = ca_file.read_bytes(), kiosk_file.read_bytes()
    again = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "kept" in again.stderr
    assert (ca_file.read_bytes(), kiosk_file.read_bytes()) == before

    # Two "replicas" with their own data directories but the same shared file agree.
    one = ResultKeys(ca_file, tmp_path / "pod-1")
    two = ResultKeys(ca_file, tmp_path / "pod-2")
    assert one.authority == two.authority
    pair = one.for_ward("dn-hai-chau", "Phường Hải Châu")
    pair.certificate.verify_directly_issued_by(two.authority)  # raises if not
    assert pair.certificate.not_valid_after_utc > datetime.now(timezone.utc)

    monkeypatch.setenv("KIOSK_DEVICE_KEY_FILE", str(kiosk_file))
    kiosk = KioskDevice(device_id="kiosk-1", ward_id="dn-hai-chau")
    credential = DeviceKeys.load_or_create(tmp_path / "pod-1").credential(kiosk)
    assert DeviceKeys.load_or_create(tmp_path / "pod-2").read(credential) == kiosk


def test_the_chart_mounts_the_shared_keys_into_the_apis_only(central):
    for service, key, variable in (("dossier", "result-ca.pem", "MOTCUA_RESULT_CA_FILE"),
                                   ("queue", "kiosk-device.key", "KIOSK_DEVICE_KEY_FILE")):
        spec = central.get("Deployment", f"motcua-{service}-api")["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "shared-key"]
        assert volume["secret"] == {"secretName": f"motcua-{service}", "defaultMode": 0o400,
                                    "items": [{"key": key, "path": key}]}
        for container in containers(spec):
            assert {"name": variable, "value": f"/etc/motcua/shared/{key}"} in container["env"]
            assert {"name": "shared-key", "mountPath": "/etc/motcua/shared", "readOnly": True} in container["volumeMounts"]
        for role in ("worker", "relay"):
            other = central.get("Deployment", f"motcua-{service}-{role}")["spec"]["template"]["spec"]
            assert not [v for v in other["volumes"] if v["name"] == "shared-key"]
    for service in ("identity", "notify", "rating"):
        spec = central.get("Deployment", f"motcua-{service}-api")["spec"]["template"]["spec"]
        assert not [v for v in spec["volumes"] if v["name"] == "shared-key"]


def test_one_docker_host_keeps_them_across_restarts():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for service in ("dossier", "queue"):
        assert f"{service}-data:/var/lib/motcua" in compose["services"][f"{service}-api"]["volumes"]
        assert f"{service}-data" in compose["volumes"]
