"""What the back-office views (app.views.admin_*) share: column labels, value labels,
validators of requisites and amounts, and the refusal a view raises from clean_row.

The views are declarative on purpose: columns, Russian labels, searches and permission sets.
Branch scope, value display, selects of status values, the search-as-you-type relation fields
and filters (accounts, meters, users, organizations, contracts, premises) and the .xlsx export
come from app.views.base.
Rows that carry history (accounts, meters, readings, the ledger) are never deleted: they are
closed, deactivated or corrected by a new row.
"""
from __future__ import annotations

import re
from decimal import Decimal

from wtforms.validators import NumberRange, Regexp

from app.services import applications

#: Labels of the columns many tables share.
COMMON_LABELS = {
    "branch": "Филиал",
    "account": "Лицевой счёт",
    "organization": "Организация",
    "contract": "Договор",
    "tariff_group": "Тарифная группа",
    "meter": "Прибор учёта",
    "user": "Учётная запись",
    "period": "Период",
    "status": "Статус",
    "phone": "Телефон",
    "email": "Электронная почта",
    "address": "Адрес",
    "zones": "Тарифность",
    "zone": "Тарифная зона",
    "range_no": "Диапазон потребления",
    "effective_from": "Действует с",
    "effective_to": "Действует по",
    "created_at": "Создано",
    "updated_at": "Изменено",
}

#: Display labels of values that have no Choices class in the models.
ZONE_SCHEMES = {1: "Однотарифный", 2: "Двухзонный (день/ночь)",
                3: "Трёхзонный (пик/полупик/ночь)"}
ZONES = {"T1": "T1 — день (пик)", "T2": "T2 — ночь", "T3": "T3 — полупик"}
RANGES = {1: "1-й диапазон", 2: "2-й диапазон", 3: "3-й диапазон"}

#: Requisites are ASCII digits: Python's \d also takes other scripts' digits (٣, ３), which
#: would reach bills, QR codes and acts as such.
INN = Regexp(r"^(\d{10}|\d{12})$", re.ASCII,
             message="ИНН — 10 цифр (организация) или 12 цифр (ИП).")
KPP = Regexp(r"^\d{9}$", re.ASCII, message="КПП — 9 цифр.")
OGRN = Regexp(r"^(\d{13}|\d{15})$", re.ASCII, message="ОГРН — 13 цифр, ОГРНИП — 15 цифр.")
POSTCODE = Regexp(r"^\d{6}$", re.ASCII, message="Почтовый индекс — 6 цифр.")
ACCOUNT_NUMBER = Regexp(applications.ACCOUNT_NUMBER,
                        message="Номер лицевого счёта — от 10 до 13 цифр.")
POSITIVE = NumberRange(min=Decimal("0.0001"), message="Значение должно быть больше нуля.")
NOT_NEGATIVE = NumberRange(min=0, message="Значение не может быть отрицательным.")


def labels(**own: str) -> dict[str, str]:
    return {**COMMON_LABELS, **own}


class RowRefused(Exception):
    """A change the back office refuses; the message is shown to the user."""
