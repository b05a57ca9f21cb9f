"""The supplier's own requisites, as configured: printed on letters, bills and receipts."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Requisite name -> configuration key.
REQUISITES = {
    "name": "SUPPLIER_NAME",
    "inn": "SUPPLIER_INN",
    "kpp": "SUPPLIER_KPP",
    "bank_account": "SUPPLIER_BANK_ACCOUNT",
    "bic": "SUPPLIER_BIC",
    "corr_account": "SUPPLIER_CORR_ACCOUNT",
    "bank_name": "SUPPLIER_BANK_NAME",
    "phone": "SUPPLIER_PHONE",
    "email": "SUPPLIER_EMAIL",
}


def requisites(config: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(config[key]) for name, key in REQUISITES.items()}
