from datetime import date

import pytest

from motcua_identity import domain

TODAY = date(2026, 11, 21)


@pytest.mark.parametrize("raw", ["0905123456", "+84905123456", "84905123456", "0905 123 456", "090.512.3456", " +84 905-123-456 "])
def test_phone_numbers_in_common_forms_normalise_to_e164(raw):
    assert domain.normalise_phone(raw) == "+84905123456"


@pytest.mark.parametrize("raw", ["", "12345", "0205123456", "+1 202 555 0100", "09051234567", "abc", None, 905123456])
def test_invalid_phone_numbers_are_refused(raw):
    assert domain.normalise_phone(raw) is None


def test_national_id_checks_province_and_birth_year():
    assert domain.check_national_id("048090001234", date(1990, 5, 1)) == []     # male, 1990, Đà Nẵng
    assert domain.check_national_id("001305001234", date(2005, 1, 1)) == []     # female, 2005, Hà Nội
    assert domain.check_national_id("003090001234", date(1990, 5, 1))           # 003 is no province
    assert domain.check_national_id("048091001234", date(1990, 5, 1))           # year 91 vs 1990
    assert domain.check_national_id("048290001234", date(1990, 5, 1))           # 2 = 21st century
    assert domain.check_national_id("04809000123", None)                         # 11 digits
    assert domain.check_national_id(48090001234, None)


def test_password_policy():
    assert domain.check_password("hoa12345") == []
    assert domain.check_password("1234567") != []
    assert domain.check_password("11111111") != []
    assert domain.check_password("12345678") != []
    assert domain.check_password("x048090001234", forbidden=("048090001234",)) != []


def test_age_band_and_birth_range():
    assert domain.age_band(date(2010, 1, 1), TODAY) == "under-18"
    assert domain.age_band(date(1990, 1, 1), TODAY) == "18-60"
    assert domain.age_band(date(1950, 1, 1), TODAY) == "60+"
    first, last = domain.birth_date_range_for_ages(TODAY, 18, 60)
    assert domain.age_on(last, TODAY) == 18 and domain.age_on(first, TODAY) == 60
    assert domain.age_on(first.replace(day=first.day - 1) if first.day > 1 else first, TODAY) >= 60


def test_names_are_normalised():
    assert domain.normalise_name("  Nguyễn   Văn  An ") == "Nguyễn Văn An"
    assert domain.normalise_name("Robert'); DROP") is None
    assert domain.normalise_name("A") is None


def test_production_passwords_use_argon2id_with_rfc_9106_cost():
    from argon2 import Type

    from motcua_identity import store

    fresh = store.default_hasher()  # what production uses (the tests swap in a cheap one)
    assert fresh.type is Type.ID
    assert fresh.memory_cost >= 64 * 1024 and fresh.time_cost >= 3
    assert fresh.hash("mat-khau-2026").startswith("$argon2id$v=19$m=65536")
