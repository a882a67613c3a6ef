from datetime import date

from hypothesis import given, strategies as st

from motcua_identity import domain
from motcua_identity.sms_commands import ChangePassword, NotUnderstood, Register, Status, parse, unaccent


def test_registration_in_the_forms_citizens_type():
    expected = Register("048090001234", "Nguyễn Văn An", date(1990, 5, 1))
    assert parse("DK 048090001234 Nguyễn Văn An 01/05/1990") == expected
    assert parse("  đk   048090001234  nguyễn văn an   1-5-1990 ") == expected
    assert parse("Dk 048090001234 NGUYỄN VĂN AN 01.05.1990") == expected
    plain = parse("dk 048090001234 nguyen van an 1/5/1990")
    assert plain == Register("048090001234", "Nguyen Van An", date(1990, 5, 1))


def test_other_commands():
    assert parse("mk abc12345 moi-2026x") == ChangePassword("abc12345", "moi-2026x")
    assert parse("tt hc-261121-7kq2m") == Status("HC-261121-7KQ2M")


def test_mistakes_get_a_helpful_reply():
    for text in ["", "DK", "DK 12345 An 01/01/1990", "DK 048090001234 An 31/02/1990", "DK 048090001234 01/05/1990",
                 "DK 048090001234 Nguyen Van An 1990", "MK onlyone", "TT", "HELLO"]:
        result = parse(text)
        assert isinstance(result, NotUnderstood), text
        assert len(result.reply) > 20 and all(ord(c) < 128 for c in result.reply)


names = st.lists(st.sampled_from(["Nguyễn", "Trần", "Lê", "Văn", "Thị", "Hoà", "Đức", "Ánh", "nguyen", "thi"]), min_size=1, max_size=4)


@given(names=names, day=st.integers(1, 28), month=st.integers(1, 12), year=st.integers(1920, 2010),
       sep=st.sampled_from("/-."), keyword=st.sampled_from(["DK", "dk", "Đk", "ĐK", "đk"]), spaces=st.integers(1, 3))
def test_any_well_formed_registration_parses(names, day, month, year, sep, keyword, spaces):
    gap = " " * spaces
    text = gap.join([keyword, "048090001234", *names, f"{day}{sep}{month:02d}{sep}{year}"])
    result = parse(text)
    assert isinstance(result, Register)
    assert result.date_of_birth == date(year, month, day)
    assert unaccent(result.full_name).lower() == unaccent(" ".join(names)).lower()


@given(st.text(max_size=200))
def test_no_text_crashes_the_parser(text):
    assert parse(text) is not None


@given(prefix=st.sampled_from(["0", "+84", "84", "+84 ", "0"]), network=st.sampled_from("35789"),
       rest=st.text("0123456789", min_size=8, max_size=8), sep=st.sampled_from(["", " ", ".", "-"]))
def test_phone_forms_normalise(prefix, network, rest, sep):
    raw = prefix + network + sep.join([rest[:2], rest[2:5], rest[5:]])
    assert domain.normalise_phone(raw) == f"+84{network}{rest}"


@given(st.text(max_size=30))
def test_phone_parser_never_crashes_and_only_returns_e164(text):
    result = domain.normalise_phone(text)
    assert result is None or (result.startswith("+84") and len(result) == 12)


@given(code=st.sampled_from(sorted(domain.PROVINCE_CODES)), year=st.integers(1900, 2099), tail=st.text("0123456789", min_size=6, max_size=6),
       female=st.booleans())
def test_cccd_consistent_with_birth_year_is_accepted(code, year, tail, female):
    century_digit = {1900: 0, 2000: 2}[year // 100 * 100] + int(female)
    number = f"{code}{century_digit}{year % 100:02d}{tail}"
    assert domain.check_national_id(number, date(year, 6, 15)) == []
    assert domain.check_national_id(number, date(year + 1 if year < 2099 else year - 1, 6, 15)) != []
