"""E-mail, password and name rules of the user aggregate."""

import pytest

from domain.errors import Invalid
from domain.users import email_key, normalize_email, normalize_name, validate_password


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM \n", "Ada.Lovelace@example.com"),
        ("root@localhost", "root@localhost"),
        ("o'hara+tag@sub.example.co.uk", "o'hara+tag@sub.example.co.uk"),
        # Decomposed "e" + combining acute becomes the composed character (NFC).
        ("jose\u0301@example.com", "jos\u00e9@example.com"),
        ("ユーザー@例え.jp", "ユーザー@例え.jp"),
    ],
)
def test_valid_emails_become_canonical(raw: str, canonical: str) -> None:
    assert normalize_email(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "no-at-sign.example.com",
        "@example.com",
        "ada@",
        "a@b@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada\u200b@example.com",  # zero-width space
        "ada\u200d@example.com",  # zero-width joiner
        "ada@exam\u202eple.com",  # right-to-left override
        "ada\u2066@example.com",  # left-to-right isolate
        "ada\u00a0@example.com",  # no-break space
        "ada\u3000x@example.com",  # ideographic space
        "ada\x00@example.com",
        "ada\t@example.com",
        "ada\ufeff@example.com",  # byte order mark
        '"ada"@example.com',
        "ada@[127.0.0.1]",
        ".ada@example.com",
        "ada.@example.com",
        "a..da@example.com",
        "ada@example..com",
        "ada@.example.com",
        "ada@-example.com",
        "ada@example_x.com",
        "x" * 65 + "@example.com",
        "ada@" + "a" * 64 + ".com",
        "ada@" + ".".join(["a" * 60] * 5),  # over 254 characters
    ],
)
def test_malformed_or_tricky_emails_are_rejected(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_email(raw)
    assert [e.field for e in caught.value.errors] == ["email"]


def test_email_key_ignores_case_in_every_script() -> None:
    assert email_key("ADA@Example.com") == email_key("ada@example.com")
    assert email_key("ÉLODIE@example.com") == email_key("élodie@example.com")
    assert email_key("STRASSE@example.com") == email_key("straße@example.com")
    assert email_key("ada@example.com") != email_key("ada2@example.com")


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128, "pässwörd", "🔑" * 8])
def test_password_within_bounds_is_kept_as_is(password: str) -> None:
    assert validate_password(password) == password


@pytest.mark.parametrize("password", ["", "x" * 7, "x" * 129])
def test_password_out_of_bounds_is_invalid(password: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate_password(password)
    assert caught.value.errors[0].field == "password"


def test_name_is_trimmed_and_optional() -> None:
    assert normalize_name(None) is None
    assert normalize_name("  Ada Lovelace ") == "Ada Lovelace"
    assert normalize_name("x" * 200) == "x" * 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "Ada\u202e", "Ada\nLovelace"])
def test_bad_names_are_invalid(name: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_name(name)
    assert caught.value.errors[0].field == "name"
