"""The official list as identity reads it (units.py) and the DK command's ward part: pure,
no database."""
from __future__ import annotations

from datetime import date

from motcua_common.wards import is_ward_id
from motcua_identity import units
from motcua_identity.sms_commands import Register, parse


def test_the_index_holds_every_unit_with_codes_as_text():
    every = units.all_units()
    assert len(every) == 3321 and len({u.official_code for u in every}) == 3321
    assert len(units.provinces()) == 34
    assert all(len(u.official_code) == 5 and len(u.province_code) == 2 for u in every)
    assert all(u.province.startswith(("Tỉnh ", "Thành phố ")) for u in every)
    song_cong = units.unit("05518")
    assert (song_cong.name, song_cong.kind, song_cong.province_code, song_cong.province) == (
        "Phường Sông Công", "phường", "19", "Tỉnh Thái Nguyên")
    assert units.unit("5518") == units.unit(5518) == song_cong
    assert units.unit("00004").province == "Thành phố Hà Nội"
    assert units.unit("99999") is None and units.unit("abc") is None and units.unit(True) is None


def test_every_unit_gets_a_valid_ward_id():
    for unit in units.all_units():
        assert is_ward_id(units.default_ward_id(unit)) and is_ward_id(units.unique_ward_id(unit))
    assert units.default_ward_id(units.unit("05518")) == "phuong-song-cong"


def test_search_without_accents_and_province_codes():
    assert [u.official_code for u in units.search(q="song cong")] == ["05518"]
    assert [u.official_code for u in units.search(q="SÔNG   CÔNG")] == ["05518"]
    assert [u.official_code for u in units.search("01", "ba dinh")] == ["00004"]
    assert units.search(q="0551")[0].official_code.startswith("0551")
    assert units.province_code("19") == units.province_code("019") == units.province_code(19) == "19"
    assert units.province_code("1") == "01"
    assert units.province_code("99") is None and units.province_code("x") is None and units.province_code("") is None


def test_dk_keeps_its_forms_and_takes_a_ward_after_the_date():
    assert parse("DK 048090001234 Nguyễn Văn An 01/05/1990") == Register("048090001234", "Nguyễn Văn An", date(1990, 5, 1))
    assert parse("DK 048090001234 Nguyen Van An 01/05/1990 05518") == Register(
        "048090001234", "Nguyen Van An", date(1990, 5, 1), "05518")
    assert parse("dk 048090001234 nguyen van an 1-5-1990 song cong").ward == "song cong"
    assert parse("DK 048090001234 01/05/1990 05518").__class__.__name__ == "NotUnderstood"   # no name
