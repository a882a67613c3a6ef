"""notify's pure rules: GSM-7 / UCS-2, segments, unaccented Vietnamese, templates, which
events text whom, backoff and the retry window, phone numbers, groups and broadcasts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from motcua_notify import domain
from motcua_notify.domain import GSM7, UCS2, count_segments, encode_sms

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- encoding and segments
def test_the_gsm7_tables_are_the_real_ones():
    assert len(domain.GSM7_BASIC) == 127          # 128 codes less the escape
    assert "\x1b" not in domain.GSM7_BASIC
    assert set("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà") <= domain.GSM7_BASIC
    assert domain.GSM7_EXTENSION == set("\f^{}\\[~]|€")
    assert not domain.GSM7_BASIC & domain.GSM7_EXTENSION


@pytest.mark.parametrize("text,encoding", [
    ("Ho so da duoc tiep nhan", GSM7),
    ("Giá 50€ [ưu đãi]", UCS2),
    ("Tarif 50€ {promo}", GSM7),
    ("Hồ sơ", UCS2),
    ("`backtick`", UCS2),          # not in GSM 03.38
    ("ç", UCS2),                   # only capital Ç is
])
def test_encoding_is_gsm7_only_when_every_character_is(text, encoding):
    assert encode_sms(text).encoding == encoding


@pytest.mark.parametrize("length,segments", [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_segments_are_160_alone_then_153(length, segments):
    assert encode_sms("a" * length) == domain.SmsBody("a" * length, GSM7, segments)


@pytest.mark.parametrize("length,segments", [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_segments_are_70_alone_then_67(length, segments):
    assert encode_sms("ư" * length).segments == segments


def test_extension_characters_count_two_septets():
    assert encode_sms("€" * 80).segments == 1      # 160 septets
    assert encode_sms("a" + "€" * 80).segments == 2
    assert encode_sms("a" * 159 + "[").segments == 2


def test_an_escape_pair_is_never_split_between_parts():
    # 152 plain characters then "€": the pair cannot start at the 153rd septet, so the
    # first part carries 152 and the rest moves on: 152 | 2+151 | 1 -> 3 parts, not 2.
    text = "a" * 152 + "€" + "a" * 152
    assert sum(2 if c == "€" else 1 for c in text) == 306
    assert count_segments(text, GSM7) == 3
    assert count_segments("a" * 151 + "€" + "a" * 153, GSM7) == 2


def test_ucs2_counts_utf16_code_units_and_keeps_surrogate_pairs_whole():
    assert encode_sms("🙂" * 35).segments == 1      # 70 code units
    assert encode_sms("🙂" * 36).segments == 2
    assert count_segments("ư" * 66 + "🙂" + "ư" * 66, UCS2) == 3


def test_decomposed_input_is_normalised_before_counting():
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Hồ sơ đã được tiếp nhận")
    assert encode_sms(nfd) == encode_sms("Hồ sơ đã được tiếp nhận")


def test_vietnamese_with_diacritics_is_ucs2():
    body = encode_sms("Hồ sơ đã được tiếp nhận, hẹn trả kết quả ngày 01/12/2026.")
    assert body.encoding == UCS2 and body.segments == 1


def test_unaccented_transliterates_every_vietnamese_letter():
    assert domain.unaccent("Đường Lê Duẩn, phường Hải Châu") == "Duong Le Duan, phuong Hai Chau"
    letters = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
    assert domain.unaccent(letters) == "a" * 17 + "e" * 11 + "i" * 5 + "o" * 17 + "u" * 11 + "y" * 5 + "d"
    assert domain.unaccent(letters.upper()) == domain.unaccent(letters).upper()


def test_unaccented_sends_gsm7_and_counts_it_right():
    text = "Hồ sơ đã được tiếp nhận. " * 7   # 175 characters
    assert encode_sms(text).encoding == UCS2 and encode_sms(text).segments == 3
    body = encode_sms(text, unaccented=True)
    assert body.encoding == GSM7 and body.segments == 2
    assert body.text.startswith("Ho so da duoc tiep nhan.")


def test_unaccented_maps_typographic_punctuation_and_keeps_ucs2_for_the_rest():
    assert encode_sms("“Họp” – lúc 8h…", unaccented=True) == domain.SmsBody('"Hop" - luc 8h...', GSM7, 1)
    emoji = encode_sms("Chúc mừng 🎉", unaccented=True)
    assert emoji.encoding == UCS2 and emoji.text == "Chuc mung 🎉"


# ---------------------------------------------------------------- templates
# The longest receipt code dossier makes (ward abbreviation of 6) and a real procedure code.
PARAMS = {"receipt_code": "HAICHA-260310-7KQ4M", "procedure_code": "BHYT-TE6", "due_date": "2026-12-01"}


@pytest.mark.parametrize("name", ["dossier_submitted", "dossier_received", "dossier_result_ready",
                                  "dossier_result_ready_online"])
def test_templates_are_vietnamese_and_fit_two_ucs2_segments(name):
    text = domain.render(name, PARAMS)
    assert "HAICHA-260310-7KQ4M" in text and "Hồ sơ" in text and "{" not in text
    assert encode_sms(text).segments <= 2
    assert encode_sms(text, unaccented=True).segments == 1


def test_submitted_template_has_procedure_due_date_and_how_to_look_it_up():
    text = domain.render("dossier_submitted", PARAMS)
    assert "BHYT-TE6" in text and "01/12/2026" in text and "TT HAICHA-260310-7KQ4M" in text


def test_result_ready_tells_where_to_collect():
    assert "Bộ phận Một cửa" in domain.render("dossier_result_ready", PARAMS)


@pytest.mark.parametrize("params", [
    {"procedure_code": "KS-01", "due_date": "2026-12-01"},
    {**PARAMS, "receipt_code": ""},
    {**PARAMS, "due_date": "01/12/2026"},
    {**PARAMS, "due_date": None},
])
def test_a_missing_or_broken_variable_is_an_error_never_half_a_message(params):
    with pytest.raises(domain.TemplateError):
        domain.render("dossier_submitted", params)


def test_unknown_template_is_an_error():
    with pytest.raises(domain.TemplateError):
        domain.render("nope", PARAMS)


def test_broadcast_text_is_sent_as_written():
    assert domain.render("broadcast", {"text": "Họp tổ trưởng {8h} 100%"}) == "Họp tổ trưởng {8h} 100%"


# ---------------------------------------------------------------- who gets texted
def test_events_ask_for_the_right_sms():
    submitted = {**PARAMS, "citizen_id": "c1", "dossier_id": "d1", "ward_id": "w", "channel": "online"}
    assert domain.intents_for("DossierSubmitted", submitted) == [domain.Intent("dossier_submitted", "c1", PARAMS)]
    received = {"citizen_id": "c1", "receipt_code": "R1", "to_status": "received", "from_status": "submitted"}
    assert [i.template for i in domain.intents_for("DossierStatusChanged", received)] == ["dossier_received"]
    processing = {**received, "to_status": "processing", "from_status": "received"}
    assert domain.intents_for("DossierStatusChanged", processing) == []
    ready = {"citizen_id": "c1", "receipt_code": "R1", "dossier_id": "d1"}
    assert [i.template for i in domain.intents_for("DossierResultReady", ready)] == ["dossier_result_ready"]
    assert domain.intents_for("CitizenRegistered", {"citizen_id": "c1", "channel": "web"}) == []


def test_a_chained_dossier_asks_for_the_chain_sms_and_it_names_every_receipt_code():
    submitted = {**PARAMS, "citizen_id": "c1", "dossier_id": "d1", "chain_id": "ch-1"}
    [intent] = domain.intents_for("DossierSubmitted", submitted)
    assert intent == domain.Intent("dossier_chain_submitted", "c1",
                                   {"receipt_codes": ["HAICHA-260310-7KQ4M"], "due_date": "2026-12-01"}, "ch-1")
    codes = ["HAICHA-260310-7KQ4M", "HAICHA-260310-8ZR2P", "HAICHA-260310-9XW3T"]
    text = domain.render("dossier_chain_submitted", {"receipt_codes": codes, "due_date": "2026-12-15"})
    assert ", ".join(codes) in text and "liên thông" in text and "15/12/2026" in text and "{" not in text
    assert encode_sms(text).segments <= 3   # three long codes; two fit in two segments
    assert encode_sms(domain.render("dossier_chain_submitted",
                                    {"receipt_codes": codes[:2], "due_date": "2026-12-15"})).segments <= 2


@pytest.mark.parametrize("codes", [[], ["HAICHA-260310-7KQ4M", ""], ["HAICHA-260310-7KQ4M", None]])
def test_a_chain_sms_with_a_missing_code_is_an_error(codes):
    with pytest.raises(domain.TemplateError):
        domain.render("dossier_chain_submitted", {"receipt_codes": codes, "due_date": "2026-12-15"})


@pytest.mark.parametrize("event_type", ["DossierSubmitted", "DossierResultReady", "DossierStatusChanged"])
def test_nobody_without_an_account_is_texted(event_type):
    assert domain.intents_for(event_type, {**PARAMS, "citizen_id": "", "to_status": "received"}) == []


# ---------------------------------------------------------------- retries
POLICY = domain.RetryPolicy(window_seconds=600, base_seconds=5, max_seconds=120)


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all():
    full = [domain.backoff_seconds(POLICY, n, lambda: 1.0) for n in range(1, 8)]
    assert full == [5, 10, 20, 40, 80, 120, 120]
    assert [domain.backoff_seconds(POLICY, n, lambda: 0.0) for n in (1, 2, 7)] == [2.5, 5, 60]


def test_next_attempt_follows_the_backoff_inside_the_window():
    at = domain.next_attempt_at(POLICY, T0, T0 + timedelta(seconds=30), 3, lambda: 1.0)
    assert at == T0 + timedelta(seconds=50)


def test_the_last_try_is_at_the_end_of_the_window_then_it_gives_up():
    end = T0 + timedelta(seconds=600)
    assert domain.next_attempt_at(POLICY, T0, end - timedelta(seconds=10), 9, lambda: 1.0) == end
    assert domain.next_attempt_at(POLICY, T0, end, 10, lambda: 1.0) is None
    assert domain.next_attempt_at(POLICY, T0, end + timedelta(seconds=1), 10, lambda: 1.0) is None


def test_retry_after_from_the_gateway_is_honoured():
    at = domain.next_attempt_at(POLICY, T0, T0, 1, lambda: 1.0, retry_after=30)
    assert at == T0 + timedelta(seconds=30)


def test_backoff_keeps_retrying_for_at_least_the_window():
    import random

    rand = random.Random(7).random
    now, attempts = T0, 1
    while (at := domain.next_attempt_at(POLICY, T0, now, attempts, rand)) is not None:
        assert at > now
        now, attempts = at, attempts + 1
    assert now - T0 >= timedelta(seconds=600)
    assert 8 <= attempts <= 15


# ---------------------------------------------------------------- phones
@pytest.mark.parametrize("raw,e164", [
    ("0901234567", "+84901234567"), ("090 123 4567", "+84901234567"), ("090.123.4567", "+84901234567"),
    ("84901234567", "+84901234567"), ("+84 90 123 4567", "+84901234567"), ("0362-222-333", "+84362222333"),
])
def test_mobile_numbers_are_normalised_to_e164(raw, e164):
    assert domain.normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["02363123456", "090123456", "09012345678", "+1 202 555 0100", "abc", "", None,
                                 901234567])
def test_other_numbers_are_refused(raw):
    assert domain.normalise_phone(raw) is None


def test_phones_are_masked_except_the_last_three_digits():
    assert domain.mask_phone("+84901234567") == "+84******567"
    assert domain.mask_phone(None) is None


# ---------------------------------------------------------------- groups and broadcasts
def test_a_group_normalises_and_deduplicates_its_members():
    group, errors = domain.check_group({"name": " Tổ trưởng TDP ", "ward_id": "dn-hai-chau",
                                        "members": ["0901234567", "+84901234567", "0362 222 333"]})
    assert errors == []
    assert group == domain.Group("Tổ trưởng TDP", "dn-hai-chau", ("+84901234567", "+84362222333"))


def test_a_group_reports_every_bad_field():
    group, errors = domain.check_group({"name": "", "members": ["0901234567", "02363123456", 5]})
    assert group is None
    assert [e.field for e in errors] == ["name", "ward_id", "members[1]", "members[2]"]
    assert "không hợp lệ" in errors[2].message
    assert [e.field for e in domain.check_group({"name": "x", "ward_id": "w", "members": []})[1]] == ["members"]


HIDDEN_IN_GROUP_NAMES = {
    "right-to-left override": "Tổ trưởng \u202eTDP 5",
    "right-to-left isolate": "Tổ trưởng \u2067TDP\u2069 5",
    "left-to-right mark": "Tổ trưởng\u200e TDP 5",
    "arabic letter mark": "Tổ trưởng\u061c TDP 5",
    "NUL": "Tổ trưởng\x00 TDP 5",
    "escape (terminal colours)": "Tổ trưởng\x1b[31m TDP 5",
    "delete": "Tổ trưởng\x7f TDP 5",
    "C1 control": "Tổ trưởng\x9b31m TDP 5",
    "zero-width space": "Tổ\u200b trưởng TDP 5",
    "zero-width joiner": "Tổ trưởng\u200d TDP 5",
    "byte order mark": "\ufeffTổ trưởng TDP 5",
    "private use": "Tổ trưởng \ue000",
    "lone combining marks": "\u0301\u0301 Tổ trưởng",
}


@pytest.mark.parametrize("trick", sorted(HIDDEN_IN_GROUP_NAMES))
def test_a_group_name_with_hidden_or_control_characters_is_refused(trick):
    group, errors = domain.check_group({"name": HIDDEN_IN_GROUP_NAMES[trick], "ward_id": "dn-hai-chau",
                                        "members": ["0901234567"]})
    assert group is None
    assert [e.field for e in errors] == ["name"]
    assert "ký tự điều khiển hoặc ký tự ẩn" in errors[0].message


def test_a_group_name_keeps_what_people_write_and_collapses_its_spaces():
    for name in ("Tổ trưởng TDP số 5 (khu A)", "Hội Người cao tuổi – phường Hải Châu", "Nhóm 12/2026: họp 8h"):
        assert domain.check_group({"name": name, "ward_id": "w", "members": ["0901234567"]})[0].name == name
    decomposed = "To\u0302\u0309  tru\u031bo\u031b\u0309ng\tTDP\u00a05"   # a phone keyboard's NFD, odd spaces
    assert domain.check_group({"name": decomposed, "ward_id": "w", "members": ["0901234567"]})[0].name \
        == "Tổ trưởng TDP 5"


def test_broadcast_text_is_bounded_in_real_segments():
    ok, errors = domain.check_broadcast_text("Mời các tổ trưởng họp lúc 8h sáng thứ Hai.", False)
    assert errors == [] and ok.encoding == UCS2
    assert domain.check_broadcast_text("ư" * 336, False)[1][0].field == "text"     # 6 UCS-2 parts
    assert domain.check_broadcast_text("ư" * 336, True)[1] == []                   # 3 GSM-7 parts
    assert domain.check_broadcast_text("   ", False)[1][0].field == "text"


def test_a_gateways_retry_after_is_believed_up_to_five_minutes():
    from motcua_notify.gateways import MAX_RETRY_AFTER_SECONDS, _retry_after_seconds

    assert _retry_after_seconds("2") == 2.0
    assert _retry_after_seconds("86400") == MAX_RETRY_AFTER_SECONDS == 300.0
    assert _retry_after_seconds("-5") == 0.0
    assert _retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") is None


def test_broadcast_text_refuses_what_a_phone_would_show_differently():
    # U+202E turns what follows around: "họp 8h" on the screen could read otherwise on phones.
    for hidden in ("\u202e", "\u200b", "\x1b[31m", "\u2066", "\ufeff"):
        _, errors = domain.check_broadcast_text(f"Mời họp {hidden}lúc 8h", False)
        assert [e.field for e in errors] == ["text"] and "U+" in errors[0].message
    ok, errors = domain.check_broadcast_text("Mời họp lúc 8h.\nĐịa điểm: hội trường phường.", False)
    assert errors == [] and "\n" in ok.text


def test_one_translation_of_a_request_without_an_answer_for_every_gateway():
    import requests
    from urllib3.exceptions import NewConnectionError

    from motcua_notify.gateways import outcome_for_request_error

    refused = requests.ConnectionError(type("E", (), {"reason": NewConnectionError(None, "refused")})())
    cases = {
        requests.ConnectTimeout(): ("connect timeout", False),
        requests.ReadTimeout(): ("timeout", True),
        refused: ("unreachable: ConnectionError", False),
        requests.ConnectionError("reset"): ("unreachable: ConnectionError", True),
        requests.TooManyRedirects(): ("unreachable: TooManyRedirects", True),
    }
    for exc, (detail, ambiguous) in cases.items():
        outcome = outcome_for_request_error(exc)
        assert outcome.retryable and not outcome.accepted
        assert (outcome.detail, outcome.ambiguous) == (detail, ambiguous)
    assert outcome_for_request_error(requests.ConnectTimeout(), "kannel").detail == "kannel: connect timeout"
    assert outcome_for_request_error(requests.ReadTimeout(), "kannel").detail == "kannel: timeout"
    assert outcome_for_request_error(refused, "kannel").detail == "kannel unreachable: ConnectionError"


def test_unaccent_keeps_the_shared_rule_and_makes_punctuation_gsm7():
    from motcua_common.names import unaccent as shared

    text = "Đăng ký “khai sinh” – xong… Hồ sơ đã được tiếp nhận\u00a0"
    assert domain.unaccent(text) == 'Dang ky "khai sinh" - xong... Ho so da duoc tiep nhan '
    assert domain.unaccent("Phường Sông Công") == shared("Phường Sông Công")


# ---------------------------------------------------------------- a step's note, the kind of result
NOTE_DETAILS = {"procedure": "Cấp thẻ bảo hiểm y tế cho trẻ…", "note": "Thiếu bản sao giấy khai sinh của trẻ",
                "e_result": True}


def test_a_supplement_request_and_a_rejection_ask_for_their_sms_naming_the_dossier():
    changed = {"citizen_id": "c1", "receipt_code": "R1", "procedure_code": "HT-KS", "dossier_id": "d1",
               "from_status": "received"}
    [asked] = domain.intents_for("DossierStatusChanged", {**changed, "to_status": "supplement_requested"})
    assert asked == domain.Intent("dossier_supplement_requested", "c1",
                                  {"receipt_code": "R1", "procedure_code": "HT-KS", "dossier_id": "d1"})
    [refused] = domain.intents_for("DossierStatusChanged", {**changed, "to_status": "rejected"})
    assert refused.template == "dossier_rejected"
    assert domain.intents_for("DossierStatusChanged", {**changed, "to_status": "supplement_requested",
                                                       "citizen_id": ""}) == []


@pytest.mark.parametrize("name", ["dossier_supplement_requested", "dossier_rejected"])
def test_the_note_templates_carry_the_note_and_the_short_name(name):
    template, params = domain.with_details(name, {**PARAMS, "dossier_id": "d1"}, NOTE_DETAILS)
    text = domain.render(template, params)
    assert "HAICHA-260310-7KQ4M" in text and "Thiếu bản sao giấy khai sinh của trẻ" in text
    assert "(Cấp thẻ bảo hiểm y tế cho trẻ…)" in text and "Bộ phận Một cửa" in text
    assert encode_sms(text, unaccented=True).segments <= 2
    with pytest.raises(domain.TemplateError):   # no note from dossier: never half a message
        domain.render(*domain.with_details(name, {**PARAMS, "dossier_id": "d1"}, None))


def test_the_result_ready_sms_says_how_to_get_the_result():
    params = {**PARAMS, "dossier_id": "d1"}
    office = domain.render(*domain.with_details("dossier_result_ready", params, {"e_result": False}))
    assert "Mời ông/bà đến Bộ phận Một cửa phường nhận" in office and "điện tử" not in office
    online = domain.render(*domain.with_details("dossier_result_ready", params, {"e_result": True}))
    assert "tải bản điện tử tại Cổng dịch vụ công" in online and "Bộ phận Một cửa" in online
    assert encode_sms(online).segments <= 2 and encode_sms(online, unaccented=True).segments == 1
    assert domain.render(*domain.with_details("dossier_result_ready", params, None)) == office
