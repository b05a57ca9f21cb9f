"""The payment QR code of GOST R 56042-2014 that Russian banking apps scan from a bill.

The payload is a header, ``ST`` + version ``0001`` + encoding digit (``2``: UTF-8) + the
separator, then ``Key=Value`` pairs joined by that separator: first the five mandatory
requisites of the payee in their fixed order, then the optional ones. A value longer than the
standard allows, or one that holds the separator, is refused, never truncated. The image is a
QR code of error correction level M, UTF-8 bytes without an ECI marker, as banks expect.
At the end, what the codes of a bill and of a «квитанция на нужную сумму» carry.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import segno

from app.models import PersonalAccount
from app.services.bill_data import DEFAULT_TZ, BillData, issued_on
from app.services.russian import month

VERSION = "0001"
#: Encoding digit of the header: 1 windows-1251, 2 UTF-8, 3 KOI8-R.
ENCODING_DIGIT = {"cp1251": "1", "utf-8": "2", "koi8-r": "3"}
ENCODING = "utf-8"
#: Separators tried in order: the first that occurs in no value is used.
SEPARATORS = "|#;:^_~{}!`"
ERROR_LEVEL = "M"

#: The mandatory requisites, in the order the standard fixes.
MANDATORY = ("Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc")
#: Optional requisites used on utility bills, in the order they are written.
OPTIONAL = ("PayeeINN", "KPP", "Sum", "Purpose", "PersAcc", "LastName", "FirstName",
            "MiddleName", "PayerAddress", "PaymPeriod", "Category", "ServiceName", "CounterId",
            "CounterVal", "QuittId", "QuittDate", "TechCode")

#: Largest length of a value, per requisite (the standard's table).
MAX_LENGTH = {"Name": 160, "BankName": 45, "CorrespAcc": 20, "PayeeINN": 12, "KPP": 9,
              "Sum": 18, "Purpose": 210}
#: Requisites with an exact form: key -> (pattern, what it must be, in Russian).
PATTERNS = {
    "PersonalAcc": (r"\d{20}", "ровно 20 цифр"),
    "BIC": (r"\d{9}", "ровно 9 цифр"),
    "CorrespAcc": (r"\d{1,20}", "до 20 цифр"),
    "PayeeINN": (r"\d{10}|\d{12}", "10 или 12 цифр"),
    "KPP": (r"\d{9}", "9 цифр"),
    "Sum": (r"\d{1,18}", "сумма в копейках, только цифры"),
    "PaymPeriod": (r"(0[1-9]|1[0-2])\d{4}", "месяц и год в виде ММГГГГ"),
    "QuittDate": (r"\d{2}\.\d{2}\.\d{4}", "дата в виде ДД.ММ.ГГГГ"),
    "TechCode": (r"\d{2}", "две цифры"),
}
#: TechCode of utilities (ЖКХ).
TECH_CODE_UTILITIES = "02"


class PaymentQrError(ValueError):
    """A requisite cannot be written into the payment QR code."""


def kopecks(amount: Decimal) -> str:
    """Rubles -> the ``Sum`` value: whole kopecks, digits only (735.00 -> '73500')."""
    value = Decimal(amount)
    if value <= 0:
        raise PaymentQrError("Сумма в QR-коде должна быть больше нуля.")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise PaymentQrError("Сумма в QR-коде указывается с точностью до копейки.")
    return str(int(cents))


def period_value(period) -> str:
    """A billing period (a date) -> the ``PaymPeriod`` value ``MMYYYY``."""
    return f"{period.month:02d}{period.year:04d}"


def _check(key: str, value: str) -> None:
    if key not in MANDATORY and key not in OPTIONAL:
        raise PaymentQrError(f"Реквизит {key} не предусмотрен для QR-кода.")
    if value == "":
        raise PaymentQrError(f"Реквизит {key} не заполнен.")
    if "\n" in value or "\r" in value:
        raise PaymentQrError(f"Реквизит {key} не может содержать перевод строки.")
    limit = MAX_LENGTH.get(key)
    if limit is not None and len(value) > limit:
        raise PaymentQrError(
            f"Реквизит {key} длиннее {limit} символов ({len(value)}): сократите его.")
    if key in PATTERNS:
        pattern, meaning = PATTERNS[key]
        if not re.fullmatch(pattern, value):
            raise PaymentQrError(f"Реквизит {key} должен быть: {meaning}; получено «{value}».")


def _pick_separator(values: list[str]) -> str:
    for candidate in SEPARATORS:
        if not any(candidate in v for v in values):
            return candidate
    raise PaymentQrError("Нет символа-разделителя, которого не было бы в реквизитах.")


def build_payload(fields: Mapping[str, object], separator: str | None = None) -> str:
    """The QR string: header, the mandatory requisites in order, then the optional ones given
    (``None`` values are left out). With ``separator`` given, a value holding it is refused;
    without, the first of SEPARATORS found in no value is used (normally ``|``)."""
    values = {k: str(v).strip() for k, v in fields.items() if v is not None}
    missing = [k for k in MANDATORY if not values.get(k)]
    if missing:
        raise PaymentQrError("Не заполнены обязательные реквизиты: " + ", ".join(missing) + ".")
    for key, value in values.items():
        _check(key, value)
    if separator is None:
        separator = _pick_separator(list(values.values()))
    elif len(separator) != 1 or separator.isalnum() or separator in "=":
        raise PaymentQrError(f"Недопустимый разделитель «{separator}».")
    for key, value in values.items():
        if separator in value:
            raise PaymentQrError(
                f"Реквизит {key} содержит символ-разделитель «{separator}»: так его не записать.")
    order = [k for k in (*MANDATORY, *OPTIONAL) if k in values]
    header = f"ST{VERSION}{ENCODING_DIGIT[ENCODING]}{separator}"
    return header + separator.join(f"{key}={values[key]}" for key in order)


def parse_payload(payload: str) -> dict[str, str]:
    """The requisites of a QR string (to check a decoded code against what was meant)."""
    if not payload.startswith(f"ST{VERSION}") or len(payload) < 8:
        raise PaymentQrError("Это не платёжный QR-код ГОСТ Р 56042-2014.")
    separator = payload[7]
    pairs = payload[8:].split(separator)
    result: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        result[key] = value
    return result


def payee_fields(supplier: Mapping[str, str]) -> dict[str, str]:
    """The payee's requisites from the supplier's configured ones."""
    return {
        "Name": supplier["name"],
        "PersonalAcc": supplier["bank_account"],
        "BankName": supplier["bank_name"],
        "BIC": supplier["bic"],
        "CorrespAcc": supplier["corr_account"],
        "PayeeINN": supplier.get("inn") or None,
        "KPP": supplier.get("kpp") or None,
    }


def qr_code(payload: str) -> segno.QRCode:
    """The QR code of a payload: level M exactly (not boosted), UTF-8 bytes, no ECI."""
    return segno.make(payload, error=ERROR_LEVEL, boost_error=False, micro=False,
                      encoding=ENCODING, eci=False)


def qr_png(payload: str, scale: int = 8, border: int = 4) -> bytes:
    """The QR code as a black-on-white PNG with the standard quiet zone of 4 modules."""
    out = io.BytesIO()
    qr_code(payload).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# What a bill's and a receipt's code carry


def purpose(account: PersonalAccount, period: dt.date | None = None) -> str:
    text = f"Оплата электроэнергии по л/с {account.number}"
    return text + (f" за {month(period)}" if period else "")


def payer_fields(account: PersonalAccount) -> dict[str, Any]:
    return {"PersAcc": account.number, "PayerAddress": account.premises.address,
            "TechCode": TECH_CODE_UTILITIES}


def bill_qr_fields(data: BillData, supplier: Mapping[str, str],
                   tz: str = DEFAULT_TZ) -> dict[str, Any]:
    """The requisites of a bill's QR code; the sum is the amount due (none when nothing is
    due: the payer types it in the bank's app)."""
    invoice = data.invoice
    due = invoice.amount_due
    fields = {
        **payee_fields(supplier),
        "Sum": kopecks(due) if due > 0 else None,
        "Purpose": purpose(data.account, invoice.period),
        **payer_fields(data.account),
        "PaymPeriod": period_value(invoice.period),
        "QuittId": invoice.number,
        "QuittDate": f"{issued_on(invoice, tz):%d.%m.%Y}",
    }
    if data.counter:
        fields["CounterId"], fields["CounterVal"] = data.counter
    return fields


def receipt_qr_fields(account: PersonalAccount, amount: Decimal,
                      supplier: Mapping[str, str]) -> dict[str, Any]:
    return {
        **payee_fields(supplier),
        "Sum": kopecks(amount),
        "Purpose": purpose(account),
        **payer_fields(account),
    }
