"""`motcua wards open --province` and `motcua wards import` (issue 17): a whole province
opened in one run through identity's own use case, twice without duplicates."""
from __future__ import annotations

import subprocess
import sys

from motcua_common.mongo import connect, service_database
from motcua_common.outbox import OUTBOX
from motcua_testing.fixtures import settings_env


def motcua(settings, *args):
    return subprocess.run([sys.executable, "-m", "motcua_platform.cli", "wards", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=300)


def test_a_whole_province_opens_in_one_run_and_a_second_run_opens_nothing(settings):
    first = motcua(settings, "open", "--province", "19")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "92 opened, 0 already open"
    assert "92/92" in first.stderr, "the progress bar reached the end"
    second = motcua(settings, "open", "--province", "19")
    assert second.returncode == 0 and second.stdout.strip() == "0 opened, 92 already open"

    identity = service_database(connect(settings), settings, "identity")
    wards = list(identity.wards.find({}, {"official_code": 1}))
    assert len(wards) == 92 and len({w["official_code"] for w in wards}) == 92
    opened = list(identity[OUTBOX].find({"routing_key": "WardOpened"}))
    assert len(opened) == 92, "one WardOpened per ward, for queue, rating and dossier"
    assert any(w["_id"] == "phuong-song-cong" for w in wards)


def test_a_csv_of_wards_with_its_mistakes_said_line_by_line(settings, tmp_path):
    csv = tmp_path / "wards.csv"
    csv.write_text("official_code,ward_id,target_population\n"
                   "5518,tn-song-cong,9800\n"        # leading zeros lost in a spreadsheet
                   "05860,,\n"
                   "99999,nowhere,10\n"              # no such unit
                   "05866,x,many\n", encoding="utf-8")
    done = motcua(settings, "import", str(csv))
    assert done.returncode == 1, "a refused line makes the run fail, after doing the rest"
    assert done.stdout.strip() == "2 opened, 0 already open, 1 refused, 1 unreadable"
    assert "line 4: 99999" in done.stderr and "line 5: target_population 'many'" in done.stderr
    identity = service_database(connect(settings), settings, "identity")
    assert identity.wards.find_one({"_id": "tn-song-cong"})["official_code"] == "05518"
    assert identity.wards.find_one({"official_code": "05860"}) is not None
    again = motcua(settings, "import", str(csv))
    assert again.stdout.strip().startswith("0 opened, 2 already open")
    missing = motcua(settings, "open", "--province", "xx")
    assert missing.returncode != 0 and "not a province code" in missing.stderr
