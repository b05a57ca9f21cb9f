"""Password rules (NIST SP 800-63B): long enough, not common or guessable, never composed
by rules, never truncated. Hashing is Werkzeug's default (scrypt)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 128
#: zxcvbn scores 0-4; below this a password is guessable.
MIN_SCORE = 3

_COMMON_RU = Path(__file__).resolve().parent.parent / "data" / "common_passwords_ru.txt"


@lru_cache(maxsize=1)
def _common_words() -> tuple[str, ...]:
    return tuple(w.strip() for w in _COMMON_RU.read_text(encoding="utf-8").split() if w.strip())


def password_problems(password: str, personal: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Russian messages saying why a password is refused; an empty list means it is fine.

    ``personal`` holds the user's own data (phone, e-mail, name) that must not make up the
    password."""
    if len(password) < MIN_LENGTH:
        return [f"Пароль должен содержать не менее {MIN_LENGTH} символов."]
    if len(password) > MAX_LENGTH:
        return [f"Пароль должен содержать не более {MAX_LENGTH} символов."]
    inputs = [p for p in personal if p] + list(_common_words())
    for item in personal:
        if item and len(item) >= 4 and item.lower() in password.lower():
            return ["Пароль не должен содержать ваш телефон, e-mail или имя."]
    result = zxcvbn(password[:100], user_inputs=inputs)
    if result["score"] < MIN_SCORE:
        return ["Пароль слишком простой или часто встречается: его легко подобрать. "
                "Возьмите фразу из нескольких слов или добавьте необычные слова."]
    return []


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(stored_hash: str | None, password: str) -> bool:
    return bool(stored_hash) and check_password_hash(stored_hash, password)
