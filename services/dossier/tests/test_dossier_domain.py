"""Pure rules: the workflow, receipt codes, the catalog and its forms."""
from __future__ import annotations

import itertools
import re
from datetime import date

import pytest

from motcua_dossier import domain
from motcua_dossier.catalog import CatalogError, chain_form, form_errors, load_catalog_file, parse_catalog
from motcua_dossier.working_days import WorkingCalendar

calendar = WorkingCalendar()
TUESDAY = date(2026, 3, 10)
DUE = date(2026, 3, 13)

ALLOWED = {
    ("submitted", "receive"): "received",
    ("received", "start_processing"): "processing",
    ("received", "request_supplement"): "supplement_requested",
    ("processing", "request_supplement"): "supplement_requested",
    ("supplement_requested", "receive"): "received",
    ("received", "reject"): "rejected",
    ("processing", "reject"): "rejected",
    ("supplement_requested", "reject"): "rejected",
    ("processing", "approve"): "result_ready",
    ("result_ready", "return"): "returned",
}


def decide(status, action, today=TUESDAY, due=DUE, requested_on=None):
    return domain.decide(status, action, due, requested_on, today, calendar)


@pytest.mark.parametrize("status,action", list(itertools.product(domain.STATUS_LABELS, domain.TRANSITIONS)))
def test_every_status_and_action(status, action):
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(domain.InvalidTransition) as info:
            decide(status, action)
        assert "Không thể" in info.value.message
    else:
        outcome = decide(status, action)
        assert (outcome.from_status, outcome.to_status) == (status, expected)


def test_unknown_action():
    with pytest.raises(domain.UnknownAction):
        decide("received", "archive")


def test_finished_dossiers_allow_nothing():
    assert domain.allowed_actions("returned") == [] and domain.allowed_actions("rejected") == []
    assert domain.allowed_actions("received") == ["start_processing", "request_supplement", "reject"]


def test_supplement_moves_the_due_date_by_the_working_days_waited():
    asked = decide("processing", "request_supplement", today=TUESDAY)
    assert asked.supplement_requested_on == TUESDAY and asked.due_date == DUE
    # Asked on Tuesday 10/3, brought on Monday 16/3: Wed, Thu, Fri, Mon = 4 working days.
    supplied = decide("supplement_requested", "receive", today=date(2026, 3, 16), requested_on=TUESDAY)
    assert supplied.to_status == "received"
    assert supplied.due_date == date(2026, 3, 19)  # Fri 13/3 + 4 working days
    assert supplied.supplement_requested_on is None


def test_supplement_brought_the_same_day_keeps_the_due_date():
    supplied = decide("supplement_requested", "receive", today=TUESDAY, requested_on=TUESDAY)
    assert supplied.due_date == DUE


def test_return_is_on_time_up_to_and_including_the_due_date():
    assert decide("result_ready", "return", today=DUE).returned_on_time is True
    assert decide("result_ready", "return", today=date(2026, 3, 16)).returned_on_time is False
    assert decide("processing", "approve").returned_on_time is None


def test_overdue_only_while_the_clock_runs():
    late = date(2026, 3, 16)
    assert domain.is_overdue("processing", DUE, late)
    assert domain.is_overdue("result_ready", DUE, late)
    assert not domain.is_overdue("processing", DUE, DUE)
    assert not domain.is_overdue("supplement_requested", DUE, late)
    assert not domain.is_overdue("returned", DUE, late)


def test_on_time_rate_is_none_before_anything_was_returned():
    assert domain.on_time_rate(0, 0) is None
    assert domain.on_time_rate(4, 3) == 0.75


# ---------------------------------------------------------------- receipt codes
def test_receipt_code_shape():
    code = domain.new_receipt_code("dn-hai-chau", TUESDAY)
    assert re.fullmatch(r"DNHC-260310-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}", code)
    assert not set(code.split("-")[2]) & set("01ILO")


def test_receipt_codes_do_not_follow_a_sequence():
    codes = [domain.new_receipt_code("dn-hai-chau", TUESDAY) for _ in range(500)]
    # Random over 31^5 ≈ 28.6M codes a ward-day: two of 500 alike happens about once in 230
    # runs (the store's unique index makes the second submission draw again), three almost
    # never; a counter or a clock would repeat or climb.
    assert len(set(codes)) >= 498
    assert codes != sorted(codes)


def test_an_offices_receipt_codes_never_collide_with_the_centres():
    """An office cut off from the centre numbers its own dossiers: same shape, a first
    random symbol the centre never draws."""
    drawn = iter(domain.OFFICE_RECEIPT_MARK * 5)
    assert domain.new_receipt_code("dn-hai-chau", TUESDAY, choose=lambda symbols: next(iter(symbols))) != ""
    centre_first = {domain.new_receipt_code("dn-hai-chau", TUESDAY).split("-")[2][0] for _ in range(400)}
    assert domain.OFFICE_RECEIPT_MARK not in centre_first
    office = domain.new_office_receipt_code("dn-hai-chau", TUESDAY, choose=lambda symbols: next(drawn))
    assert office == "DNHC-260310-XXXXX" and domain.is_office_receipt_code(office)
    assert re.fullmatch(r"DNHC-260310-X[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}",
                        domain.new_office_receipt_code("dn-hai-chau", TUESDAY))
    assert not domain.is_office_receipt_code(domain.new_receipt_code("dn-hai-chau", TUESDAY))


@pytest.mark.parametrize("ward,abbreviation", [
    ("dn-hai-chau", "DNHC"), ("dn-lien-chieu", "DNLC"), ("hn-ba-dinh", "HNBD"), ("tn-song-cong", "TNSC"),
    ("hcm-ben-thanh", "HCMBT"), ("dongda", "DONG"),
])
def test_ward_abbreviation(ward, abbreviation):
    assert domain.ward_abbreviation(ward) == abbreviation


def test_receipt_key_forgives_case_spaces_and_dashes():
    assert domain.receipt_key(" dnhc 260310-7kq4m ") == domain.receipt_key("DNHC-260310-7KQ4M") == "DNHC2603107KQ4M"


def test_phone_last4():
    assert domain.phone_last4({"phone_last4": "3456"}) == "3456"
    assert domain.phone_last4({"phone": "+84 905 123 456"}) == "3456"
    assert domain.phone_last4({}) is None


# ---------------------------------------------------------------- the catalog
def test_the_catalog_has_the_ward_procedures_and_the_birth_chain():
    catalog = load_catalog_file()
    assert len(catalog.procedures) >= 12
    names = " | ".join(p.name for p in catalog.procedures)
    for expected in ("khai sinh", "khai tử", "kết hôn", "tình trạng hôn nhân", "bản sao từ bản chính",
                     "chữ ký", "thường trú", "tạm trú", "trẻ em dưới 6 tuổi", "nhận cha, mẹ, con",
                     "trích lục", "giám hộ"):
        assert expected in names.lower()
    birth = catalog.get("HT-KS")
    assert birth.next_procedures == ("CTR-TT", "BHYT-TE6") and birth.chain_days == 3
    for p in catalog.procedures:
        assert p.authority == "ward" and p.level in (2, 3, 4)
        assert p.statutory_days == 0 or p.ward_days <= p.statutory_days
        assert isinstance(p.fee, int) and p.required_documents and p.form
    assert not catalog.get("CTH-BS").online and catalog.get("HT-KS").online


def test_a_catalog_naming_an_unknown_next_procedure_is_refused():
    text = """
version: "x"
procedures:
  - {code: A, name: A, field: F, level: 3, authority: ward, statutory_days: 3, ward_days: 2, fee: 0,
     required_documents: [d], form: [], next_procedures: [B]}
"""
    with pytest.raises(CatalogError):
        parse_catalog(text)


def test_form_errors():
    birth = load_catalog_file().get("HT-KS")
    errors = form_errors(list(birth.form), {"ho_ten": "An", "ngay_sinh": "01/03/2026", "gioi_tinh": "Khác",
                                            "noi_sinh": "  ", "ho_ten_me": "Lan", "quan_he_nguoi_di_dang_ky": "Mẹ",
                                            "so_thich": "x"})
    assert set(errors) == {"ngay_sinh", "gioi_tinh", "noi_sinh", "so_thich"}
    assert "YYYY-MM-DD" in errors["ngay_sinh"]
    assert "Nơi sinh" in errors["noi_sinh"]


def test_chain_form_asks_a_shared_field_once():
    catalog = load_catalog_file()
    fields = chain_form([catalog.get(c) for c in ("HT-KS", "CTR-TT", "BHYT-TE6")])
    names = [f.name for f in fields]
    assert len(names) == len(set(names))
    assert {"ho_ten", "ngay_sinh", "dia_chi_thuong_tru", "noi_dang_ky_kcb"} <= set(names)
