"""Names people type for others to read, one rule for every service: a citizen's or an
officer's full name (identity), a broadcast group's name (notify).

A name is shown on screens, lists and printouts next to other text. Some characters
change what is shown without being seen themselves, and have no place in a name:
  * controls (NUL, ESC and its terminal colour codes, ...);
  * format characters: the bidirectional overrides, embeddings and isolates
    (U+202A-202E, U+2066-2069) that turn the text after them around, the direction marks
    (U+200E, U+200F, U+061C), zero-width spaces and joiners, the byte order mark;
  * surrogates, private-use and unassigned code points;
  * a combining mark with no letter to sit on.
Whitespace of any kind (tabs, no-break and ideographic spaces) is not refused: runs of it
become one space, as a person typing the name meant."""
from __future__ import annotations

import unicodedata

# Control, format, surrogate, private use, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def unsafe_characters(text: str) -> list[str]:
    """The characters of `text` (taken as it will be stored: NFC, spaces collapsed) that
    could hide or disguise what a name shows, in order; empty when there is none."""
    found = []
    carrier = False   # whether a mark here would sit on a letter (or on that letter's marks)
    for ch in text:
        category = unicodedata.category(ch)
        if category in _HIDDEN_CATEGORIES:
            found.append(ch)
            carrier = False
        elif category.startswith("M"):
            if not carrier:
                found.append(ch)   # nothing to combine with: it lands on whatever is shown before it
        else:
            carrier = not ch.isspace()
    return found


def normalise_display_name(value: object) -> str | None:
    """The name as it is stored and shown: NFC, runs of whitespace made one space, trimmed;
    None when it is not a string or carries a character unsafe_characters refuses.

    Length and which characters a kind of name allows (a person's name: letters only) are
    the caller's rule."""
    if not isinstance(value, str):
        return None
    name = " ".join(unicodedata.normalize("NFC", value).split())
    if unsafe_characters(name):
        return None
    return name


def unaccent(text: str) -> str:
    """Vietnamese without diacritics, case and spacing kept: "Đăng ký" -> "Dang ky"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def fold(text: str) -> str:
    """For searching by what people type: no accents, lower case, single spaces, so
    "song cong" finds «Phường Sông Công» and "dang ky khai sinh" «Đăng ký khai sinh»."""
    return " ".join(unaccent(text).casefold().split())
