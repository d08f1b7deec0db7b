"""Salesforce record ids: a 3-character key prefix naming the object, the org's pod, a base-62
sequence number, and the 3-character suffix that makes the 18-character form case-insensitive."""

from __future__ import annotations

import string

# Digits, then upper, then lower case: the same order as ASCII, so ids of one prefix sort as
# their sequence numbers do.
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_SEQUENCE_WIDTH = 9
POD = "8W"


def record_id(key_prefix: str, sequence: int) -> str:
    """The 18-character id of record number `sequence` of the object with `key_prefix`."""
    digits = []
    for _ in range(_SEQUENCE_WIDTH):
        sequence, remainder = divmod(sequence, 62)
        digits.append(BASE62[remainder])
    if sequence:
        raise ValueError("sequence number out of range")
    return to_18(key_prefix + POD + "0" + "".join(reversed(digits)))


def to_18(id15: str) -> str:
    suffix = ""
    for start in (0, 5, 10):
        flags = 0
        for bit, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << bit
        suffix += _SUFFIX_ALPHABET[flags]
    return id15 + suffix


def normalize_id(raw: str) -> str | None:
    """The canonical 18-character form of a 15- or 18-character id, or None when `raw` is not one.

    The suffix of an 18-character id is case-insensitive; the 15-character body is not.
    """
    if len(raw) not in (15, 18) or any(char not in BASE62 for char in raw):
        return None
    return to_18(raw[:15])
