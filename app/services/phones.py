"""Phone numbers: accept any usual Russian form, store E.164."""
from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str | None) -> str | None:
    """Return the E.164 form of a Russian mobile or landline number, or None if it is not one.

    Accepts "8 918 123-45-67", "+7 (918) 123-45-67", "9181234567" and the like.
    """
    if not raw:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    if "@" in raw or not 10 <= len(digits) <= 11:
        return None
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if len(digits) == 10:
        digits = "7" + digits
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 7 or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
