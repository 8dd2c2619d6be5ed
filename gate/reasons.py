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
    BAD_ENCODING = "bad_encoding"  # Base45, base64url, hex or zlib layer is broken
    SCHEMA_INVALID = "schema_invalid"  # decoded, but not the certificate's schema
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # signed with other than ES256/PS256/Ed25519
    BAD_CHARACTER = "bad_character"  # a control, bidi control or line separator in a text field
    FIELD_TOO_LONG = "field_too_long"  # a name or text field longer than any real one
    TOO_MANY_FIELDS = "too_many_fields"  # more `|` fields than the kind ever has
    IMPLAUSIBLE_DATE = (
        "implausible_date"  # a real day no card carries (born in year 1, valid to 9999)
    )

    # Codes that are not credentials (recognised so that the refusal says what they are)
    PAYMENT_CODE = "payment_code"  # VietQR / EMVCo payment code (`000201...`)
    VENUE_POSTER = "venue_poster"  # a venue's check-in poster: a place, not a person
    URL = "url"  # a web address
    SMART_HEALTH_CARD = "smart_health_card"  # `shc:/`: no trust list for it here

    # Signer of a signed kind; the credential may still be well-formed (valid, unverified)
    SIGNER_UNKNOWN = "signer_unknown"  # no pinned certificate or key for its key id / CA
    SIGNER_EXPIRED = "signer_expired"  # signature checks, but the signer's validity has ended
    SIGNER_NOT_YET_VALID = "signer_not_yet_valid"  # the signer's validity has not begun

    # Authenticity and validity of a signed kind
    BAD_SIGNATURE = "bad_signature"  # the signature does not verify: forged or tampered
    BAD_SIGNER_CERTIFICATE = "bad_signer_certificate"  # VDS-NC `cer` not signed by its CSCA
    WRONG_KEY_USAGE = "wrong_key_usage"  # the signer may not sign this certificate type
    EXPIRED = "expired"  # past its own expiry (`exp`, pass end, card end date)
    NOT_YET_VALID = "not_yet_valid"  # before its own start (`iat`, pass start, card start)
    OLDER_THAN_12_MONTHS = "older_than_12_months"  # Vietnam-issued HC1 over 12 months old

    # Policy
    KIND_NOT_ACCEPTED = "kind_not_accepted"
    CERTIFICATE_TYPE_NOT_ACCEPTED = "certificate_type_not_accepted"  # vaccination/test/recovery
    VACCINATION_INCOMPLETE = "vaccination_incomplete"  # fewer doses than the series needs
    VACCINATION_TOO_RECENT = "vaccination_too_recent"  # last dose under the minimum days ago
    VACCINATION_TOO_OLD = "vaccination_too_old"  # last dose over the maximum days ago
    CERTIFICATE_TOO_OLD = "certificate_too_old"  # issued longer ago than the site allows
    TEST_TOO_OLD = "test_too_old"  # sample taken longer ago than the site allows
    TEST_POSITIVE = "test_positive"  # the test result is positive / detected
    RECOVERY_NOT_YET_VALID = "recovery_not_yet_valid"  # before its own valid-from date
    RECOVERY_TOO_OLD = "recovery_too_old"  # past its valid-until date or the site's limit
    DENIED = "denied"  # the subject is on the site's deny list
    REVOKED = "revoked"  # the pass id or certificate id is on the site's deny list
    NOT_ON_ALLOW_LIST = "not_on_allow_list"  # allow-list mode and the subject is not on it
    WRONG_VENUE = "wrong_venue"  # a gate pass for another venue
    WRONG_GATE = "wrong_gate"  # a gate pass for other gates of this venue
    CLOSED = "closed"  # outside the gate's opening hours
    ANTI_PASSBACK = "anti_passback"  # the same subject passed this gate minutes ago

    # Gate state
    GATE_LOCKED = "gate_locked"  # the operations team locked the gate: nobody enters
    DUPLICATE = "duplicate"
    STORAGE_FULL = "storage_full"
    POLICY_UNAVAILABLE = "policy_unavailable"  # the remote deny list cannot be read
    INTERNAL_ERROR = "internal_error"
