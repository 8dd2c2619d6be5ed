"""Stable reason codes shared by `gate parse`, the event, the log and the signal pattern.

A reason code is part of the published event schema: never rename one, only add.
"""

from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"

    # Payload shape (any kind)
    EMPTY = "empty"
    OVERSIZED = "oversized"
    BINARY = "binary"
    UNKNOWN_FORMAT = "unknown_format"

    # Structure and consistency of a recognised kind
    MALFORMED = "malformed"
    BAD_ID_NUMBER = "bad_id_number"
    BAD_DATE = "bad_date"
    BAD_GENDER = "bad_gender"
    ID_GENDER_MISMATCH = "id_gender_mismatch"
    ID_BIRTH_YEAR_MISMATCH = "id_birth_year_mismatch"
    ISSUE_BEFORE_BIRTH = "issue_before_birth"
    ISSUE_BEFORE_CHIP_CARDS = "issue_before_chip_cards"
    DATE_IN_FUTURE = "date_in_future"

    # Policy
    KIND_NOT_ACCEPTED = "kind_not_accepted"

    # Gate state
    DUPLICATE = "duplicate"
    STORAGE_FULL = "storage_full"
    INTERNAL_ERROR = "internal_error"
