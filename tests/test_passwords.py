"""Password rules: length, common and guessable passwords, personal data; scrypt hashing."""
import pytest

from app.services.passwords import check_password, hash_password, password_problems


@pytest.mark.parametrize("password, message", [
    ("Ab1!xyz", "не менее 8 символов"),
    ("x" * 129, "не более 128 символов"),
    ("password", "слишком простой"),
    ("12345678", "слишком простой"),
    ("qwerty123", "слишком простой"),
    ("пароль123", "слишком простой"),
    ("gfhjkm123", "слишком простой"),
    ("krasnodar2024", "слишком простой"),
])
def test_refused_passwords(password, message):
    problems = password_problems(password)
    assert problems and message in problems[0]


def test_personal_data_refused():
    problems = password_problems("мой 9181234567 навсегда", personal=["9181234567"])
    assert problems == ["Пароль не должен содержать ваш телефон, e-mail или имя."]


@pytest.mark.parametrize("password", [
    "correct horse battery staple",
    "Тестовый-пароль-42",
    "кубанский вечер у моря",
    "x7#Lq9!vRt2m",
    "a" * 3 + " длинная фраза из слов " + "z" * 40,
])
def test_accepted_passwords(password):
    assert password_problems(password) == []


def test_hash_is_scrypt_and_checks():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("scrypt:")
    assert "correct horse" not in stored
    assert check_password(stored, "correct horse battery staple")
    assert not check_password(stored, "correct horse battery stapl")
    assert not check_password(None, "anything")
