"""One base64 reader for everything the gate decodes: both alphabets, padding optional,
nothing else."""

import base64

import pytest

from gate.b64 import base64url, unbase64

DATA = bytes(range(256))


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(DATA).decode(),
        base64.urlsafe_b64encode(DATA).decode().rstrip("="),
        base64.b64encode(DATA).decode(),
        base64.b64encode(DATA).decode().rstrip("="),
    ],
    ids=["url-safe", "url-safe unpadded", "standard", "standard unpadded"],
)
def test_both_alphabets_are_read_with_or_without_padding(text: str) -> None:
    assert unbase64(text) == DATA


@pytest.mark.parametrize(
    "text",
    ["QUJD!", "QU JD", "QUJD\n", "QU=JD", "QUJDR", "QUJDé", "\u0661\u0662\u0663\u0664"],
    ids=[
        "punctuation",
        "space",
        "newline",
        "padding inside",
        "one char too many",
        "accent",
        "arabic digits",
    ],
)
def test_anything_else_is_an_error_not_skipped(text: str) -> None:
    with pytest.raises(ValueError):
        unbase64(text)


def test_the_empty_text_is_no_bytes() -> None:
    assert unbase64("") == b""


def test_the_writer_gives_unpadded_url_safe_text_the_reader_reads_back() -> None:
    text = base64url(DATA)
    assert "=" not in text and "+" not in text and "/" not in text
    assert text == base64.urlsafe_b64encode(DATA).decode().rstrip("=")
    assert unbase64(text) == DATA
