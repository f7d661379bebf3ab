"""server.rules.validation: what people type, checked before anything is stored. Pure."""

from __future__ import annotations

import base64

import pytest

from server.models import Category
from server.rules.validation import (
    BODY_TOO_LONG,
    EMPTY_BODY,
    EMPTY_SUBJECT,
    LOOKS_ENCRYPTED,
    MAX_BODY_CHARS,
    MAX_SUBJECT_CHARS,
    SUBJECT_TOO_LONG,
    check_body,
    check_subject,
    clean_text,
    parse_category,
    parse_int,
)


def test_body_limit_is_five_thousand_characters() -> None:
    assert MAX_BODY_CHARS == 5000
    assert check_body("a" * 5000) is None
    assert check_body("a" * 5001) is BODY_TOO_LONG
    assert BODY_TOO_LONG.status == 413


def test_limit_counts_characters_not_bytes() -> None:
    assert check_body("é" * 5000) is None


def test_empty_body_is_refused() -> None:
    assert check_body("") is EMPTY_BODY
    assert EMPTY_BODY.status == 400
    assert check_body("Bonjour") is None


def test_subject_limits() -> None:
    assert check_subject("") is EMPTY_SUBJECT
    assert check_subject("s" * MAX_SUBJECT_CHARS) is None
    assert check_subject("s" * (MAX_SUBJECT_CHARS + 1)) is SUBJECT_TOO_LONG


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Bonjour  ", "Bonjour"),
        ("ligne 1\r\nligne 2", "ligne 1\nligne 2"),
        ("nul\x00byte", "nulbyte"),
        ("\r\n\t  ", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize("value", [None, 42, b"bytes", ["list"], object()])
def test_clean_text_of_a_non_string_is_empty(value: object) -> None:
    assert clean_text(value) == ""


def test_whitespace_only_body_is_empty_once_cleaned() -> None:
    assert check_body(clean_text("   \r\n  ")) is EMPTY_BODY


@pytest.mark.parametrize("category", list(Category))
def test_every_category_parses(category: Category) -> None:
    assert parse_category(category.value) is category


@pytest.mark.parametrize("value", ["", "urgent", "ADMIN", " admin", "question;drop"])
def test_unknown_categories_are_refused(value: str) -> None:
    assert parse_category(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("30", 30), (" 7 ", 7), ("0", None), ("31", None), ("-1", None), ("1.5", None)],
)
def test_parse_int_in_range(value: str, expected: int | None) -> None:
    assert parse_int(value, 1, 30) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "1e3", "0x10", 5, "²", "¹²"])
def test_parse_int_refuses_what_is_not_a_plain_number(value: object) -> None:
    assert parse_int(value, 0, 10_000) is None


def test_text_shaped_like_an_encrypted_value_is_refused_not_misread() -> None:
    lookalike = "v1:dev:" + base64.b64encode(bytes(48)).decode()
    assert check_body(lookalike) is LOOKS_ENCRYPTED
    assert check_subject(lookalike) is LOOKS_ENCRYPTED
    assert check_body("v1: brouillon de ma question") is None
