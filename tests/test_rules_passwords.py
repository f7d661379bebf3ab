"""The password policy, as a person choosing a new password meets it."""

from __future__ import annotations

import unicodedata

import pytest

from server.rules import passwords
from server.rules.passwords import check_new_password

EMAIL = "alice.durand@demo.colloque.test"


def test_a_long_uncommon_password_is_accepted() -> None:
    assert check_new_password("cheval agrafe pile correcte", EMAIL) is None


def test_no_composition_rules_apply() -> None:
    # Lowercase letters only, no digit, no symbol: length is what counts.
    assert check_new_password("lavandebleuesurletoit", EMAIL) is None


@pytest.mark.parametrize("password", ["", "court", "onze-chiffr"])
def test_shorter_than_12_is_refused_with_the_reason(password: str) -> None:
    assert check_new_password(password, EMAIL) is passwords.TOO_SHORT
    assert "12" in passwords.TOO_SHORT.message


def test_length_counts_characters_after_nfc_not_bytes_or_code_points_as_typed() -> None:
    decomposed = unicodedata.normalize("NFD", "éléphantéé")  # 10 characters, 16 code points
    assert len(decomposed) > 12
    assert check_new_password(decomposed, EMAIL) is passwords.TOO_SHORT
    # Twelve accented characters are twelve, whatever their UTF-8 size.
    assert check_new_password("éèàùçôîêâëïü", EMAIL) is None


def test_longer_than_1024_is_refused() -> None:
    assert check_new_password("a-b " * 256, EMAIL) is None  # exactly 1,024
    assert check_new_password("a-b " * 256 + "x", EMAIL) is passwords.TOO_LONG


@pytest.mark.parametrize(
    "password", ["unbelievable", "UnBelievable", "MOTHERFUCKER", "scandinavian"]
)
def test_the_most_common_passwords_are_refused_whatever_the_case(password: str) -> None:
    assert check_new_password(password, EMAIL) is passwords.TOO_COMMON


def test_the_shipped_list_has_ten_thousand_entries() -> None:
    common = passwords.common_passwords()
    assert len(common) == 10_000
    assert {"password", "123456", "qwerty", "azertyui"} <= common
    assert not any(entry.startswith("#") for entry in common)


def test_a_list_can_be_passed_in() -> None:
    assert check_new_password("ourpracticename", EMAIL, frozenset({"ourpracticename"})) is (
        passwords.TOO_COMMON
    )


@pytest.mark.parametrize(
    "password",
    [EMAIL, EMAIL.upper(), "alice.durand-2024!", "my ALICE.DURAND password"],
)
def test_the_email_or_its_local_part_is_refused(password: str) -> None:
    assert check_new_password(password, EMAIL) is passwords.CONTAINS_EMAIL


def test_a_very_short_local_part_does_not_refuse_everything() -> None:
    assert check_new_password("jolie maison au bord", "jo@demo.colloque.test") is None


def test_refusals_are_client_errors_with_stable_codes() -> None:
    refusals = [passwords.TOO_SHORT, passwords.TOO_LONG, passwords.TOO_COMMON]
    refusals += [passwords.CONTAINS_EMAIL, passwords.MISMATCH]
    assert {refusal.status for refusal in refusals} == {400}
    assert len({refusal.code for refusal in refusals}) == len(refusals)
