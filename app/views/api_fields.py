"""Fields of the JSON API's bodies: what a request may hold, refused in Russian (marshmallow
says it in English), and money and kWh as strings ("123.45"), which JSON numbers would round."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from marshmallow import Schema, fields, validate

from app.views.api_query import MAX_ID

CENTS = Decimal("0.01")


def _messages(**extra: str) -> dict[str, str]:
    return {"required": "Обязательное поле.", "null": "Поле не может быть пустым (null).",
            "validator_failed": "Недопустимое значение.", **extra}


class RussianSchema(Schema):
    """A request body schema whose errors a person can read."""

    error_messages = {"unknown": "Неизвестное поле.", "type": "Ожидается объект JSON."}


def length(maximum: int, minimum: int | None = None) -> validate.Length:
    return validate.Length(min=minimum, max=maximum, error=(
        "Не более {max} символов." if minimum is None else "От {min} до {max} символов."))


def positive_id() -> validate.Range:
    return validate.Range(min=1, max=MAX_ID, error="Ожидается положительное целое число.")


class JsonInteger(fields.Integer):
    """A JSON integer, not ``true`` (Python's bool is an int) nor ``1.0``."""

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class JsonBoolean(fields.Boolean):
    """``true`` or ``false``, not 1 or 0 (Python's set of {True} holds 1)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class IsoDate(fields.Date):
    """A day as ``YYYY-MM-DD``, what the spec's ``format: date`` (RFC 3339) says; Python
    would also read ``20260101`` and ``2026-W01-1``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def integer(**kwargs) -> fields.Integer:
    return JsonInteger(strict=True, error_messages=_messages(
        invalid="Ожидается целое число.", too_large="Слишком большое число."), **kwargs)


def string(**kwargs) -> fields.String:
    return fields.String(error_messages=_messages(invalid="Ожидается строка."), **kwargs)


def boolean(**kwargs) -> fields.Boolean:
    return JsonBoolean(error_messages=_messages(invalid="Ожидается true или false."), **kwargs)


def money_field(description: str, **kwargs) -> fields.Decimal:
    """Rubles and kopecks as a string: JSON numbers would lose the kopecks."""
    return fields.Decimal(places=2, as_string=True, metadata={
        "type": "string", "format": "decimal", "pattern": r"^-?\d+\.\d{2}$",
        "example": "735.00", "description": description}, **kwargs)


def kwh_field(description: str, **kwargs) -> fields.Decimal:
    return fields.Decimal(places=3, as_string=True, metadata={
        "type": "string", "format": "decimal", "pattern": r"^-?\d+\.\d{3}$",
        "example": "100.000", "description": description}, **kwargs)


class UtcDateTime(fields.DateTime):
    """A moment in ISO 8601 with its offset; a naive value (SQLite) is UTC as stored."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


def error_body(message: str, errors=None) -> dict:
    return {"message": message, **({"errors": errors} if errors else {})}


def quantized(value: Decimal | None, places: Decimal = CENTS) -> str | None:
    return None if value is None else str(Decimal(value).quantize(places))
