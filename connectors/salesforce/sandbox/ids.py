"""Salesforce record ids: a 3-character key prefix naming the object, the org's pod, a base-62
sequence number, and the 3-character suffix that makes the 18-character form case-insensitive."""

from __future__ import annotations

import string

# Digits, then upper, then lower case: the same order as ASCII, so ids of one prefix sort as
# their sequence numbers do.
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
POD = "8W"


def record_id(key_prefix: str, sequence: int) -> str:
    """The 18-character id of record number `sequence` of the object with `key_prefix`."""
    # Seeding mints hundreds of thousands of ids, so digits and case flags come two at a time.
    rest, low = divmod(sequence, _PAIRS)
    rest, mid_low = divmod(rest, _PAIRS)
    rest, mid_high = divmod(rest, _PAIRS)
    top, high = divmod(rest, _PAIRS)
    if top >= len(BASE62):
        raise ValueError("sequence number out of range")
    digits = BASE62[top] + _PAIR_DIGITS[high] + _PAIR_DIGITS[mid_high] + _PAIR_DIGITS[mid_low] + _PAIR_DIGITS[low]
    head = key_prefix + POD + "0"
    return (
        head
        + digits
        + _SUFFIX_ALPHABET[_flags(head[:5])]
        + _SUFFIX_ALPHABET[_flags(head[5] + digits[:4])]
        + _SUFFIX_ALPHABET[_PAIR_FLAGS[digits[4:6]] | _PAIR_FLAGS[digits[6:8]] << 2 | _PAIR_FLAGS[digits[8]] << 4]
    )


_PAIRS = len(BASE62) ** 2
_PAIR_DIGITS = tuple(a + b for a in BASE62 for b in BASE62)
_PAIR_FLAGS = {
    **{a + b: (a.isupper()) | (b.isupper()) << 1 for a in BASE62 for b in BASE62},
    **{a: int(a.isupper()) for a in BASE62},
}


def to_18(id15: str) -> str:
    return id15 + "".join(_SUFFIX_ALPHABET[_flags(id15[start : start + 5])] for start in (0, 5, 10))


def _flags(chunk: str) -> int:
    flags = 0
    for bit, char in enumerate(chunk):
        if "A" <= char <= "Z":
            flags |= 1 << bit
    return flags


def normalize_id(raw: str) -> str | None:
    """The canonical 18-character form of a 15- or 18-character id, or None when `raw` is not one.

    The suffix of an 18-character id is case-insensitive; the 15-character body is not.
    """
    if len(raw) not in (15, 18) or any(char not in BASE62 for char in raw):
        return None
    return to_18(raw[:15])
