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
    BAD_OLD_ID_NUMBER = "bad_old_id_number"  # CCCD's old CMND field: not 9 or 12 digits, nor empty
    MISSING_NAME = "missing_name"  # the name field is empty or only whitespace
    BAD_PROVINCE_CODE = "bad_province_code"  # CCCD ID digits 1-3 are 000 or 097-099
    ID_CENTURY_MISMATCH = "id_century_mismatch"  # CCCD ID digit 4 encodes another birth century
    BAD_DECLARATION_TYPE = "bad_declaration_type"  # national QR LoaiDinhDanh is not 0 or 1
    BAD_QID = "bad_qid"  # national QR platform identifier is empty or not digits

    # Policy
    KIND_NOT_ACCEPTED = "kind_not_accepted"

    # Gate state
    DUPLICATE = "duplicate"
    STORAGE_FULL = "storage_full"
    INTERNAL_ERROR = "internal_error"
