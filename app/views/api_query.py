"""A list's ``q`` in the JSON API: rison or JSON as sent, the filters it may hold, and what
is wrong with it in Russian (jsonschema says it in English). The schema itself is each
resource's (``OwnRowsApi.list_query_schema``)."""
from __future__ import annotations

import json

import jsonschema
import prison

from app.views.guards import json_strings, storable

#: Ids above this are refused before any lookup: PostgreSQL's integer columns end there (an
#: id past them would be a database error, a 500), as do the routes' <int:...> (app/__init__).
MAX_ID = 2**31 - 1
BAD_QUERY = "Неверный параметр q"
NOT_RISON = f"{BAD_QUERY}: это не rison и не JSON."
BROKEN_QUERY = f"{BAD_QUERY}: недопустимые символы (нулевой байт или испорченный Юникод)."
JSON_TYPES = {"integer": "целое число", "string": "строка", "array": "список",
              "object": "объект"}
#: The filters a list takes, of those FAB has (each column takes those of its type).
FILTER_OPERATIONS = ["eq", "neq", "gt", "lt", "sw", "ct"]


def numbers_up_to(limit: int) -> str:
    """A pattern of the whole numbers from 0 to ``limit`` in digits: a filter's value is a
    string, and JSON Schema bounds only numbers."""
    text = str(limit)
    shorter = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    below = [f"{text[:place]}[0-{int(digit) - 1}][0-9]{{{len(text) - place - 1}}}"
             for place, digit in enumerate(text) if digit != "0"]
    return f"^(?:{'|'.join([*shorter, *below, text])})$"


def list_query(value: str | None):
    """A list's ``q``, rison or JSON, as sent (FAB's ``@rison`` URL-decodes JSON a second time,
    so a filter with "&", "+" or "%" broke). ValueError when it is neither, or holds text no
    database takes (a JSON escape of NUL or of half a surrogate pair)."""
    if not value:
        return {}
    try:
        args = prison.loads(value)
    except (prison.decoder.ParserException, ValueError, IndexError, TypeError, RecursionError):
        try:
            args = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError(NOT_RISON) from None
    if not all(storable(text) for text in json_strings(args)):
        raise ValueError(BROKEN_QUERY)
    return args


def query_error(error: jsonschema.ValidationError) -> str:
    """What is wrong with a list's ``q``, in Russian (jsonschema says it in English)."""
    value = error.validator_value
    match error.validator:
        case "additionalProperties":
            unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            problem = f"неизвестные поля: {', '.join(unknown)}"
        case "required":
            missing = [name for name in value if name not in error.instance]
            problem = f"нет поля {', '.join(missing)}"
        case "enum":
            problem = f"допустимо одно из: {', '.join(map(str, value))}"
        case "type":
            problem = f"ожидается {JSON_TYPES.get(value, value)}"
        case "minimum":
            problem = f"не меньше {value}"
        case "maximum":
            problem = f"не больше {value}"
        case "maxItems":
            problem = f"не больше {value} элементов"
        case "maxLength":
            problem = f"не длиннее {value} символов"
        case _:
            problem = "недопустимое значение"
    where = ".".join(map(str, error.absolute_path))
    return f"{BAD_QUERY}: {where}: {problem}." if where else f"{BAD_QUERY}: {problem}."


#: A filter's value for a column of each kind, as FAB's filter reads it («description» goes
#: into the message when it is not one); any other column takes text. An id past the column's
#: integer would be a PostgreSQL error.
FILTER_VALUES = {
    "integer": {"type": "string", "pattern": numbers_up_to(MAX_ID),
                "description": f"целое число от 0 до {MAX_ID}"},
    "date": {"type": "string", "format": "date", "description": "дата ГГГГ-ММ-ДД"},
    "text": {"type": "string", "maxLength": 100, "description": "строка до 100 символов"},
}


def value_validator(schema: dict) -> jsonschema.Validator:
    """A filter value's check, its format (a date) included."""
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def filter_error(filters: list[dict], rules: dict) -> str | None:
    """What is wrong with a filter whose shape is right, in Russian; None if nothing. ``rules``:
    each column's operations and value validator."""
    for number, item in enumerate(filters):
        operations, value = rules[item["col"]]
        if item["opr"] not in operations:
            return (f"{BAD_QUERY}: filters.{number}.opr: для поля {item['col']} допустимо "
                    f"одно из: {', '.join(operations)}.")
        if not value.is_valid(item["value"]):
            return (f"{BAD_QUERY}: filters.{number}.value: ожидается "
                    f"{value.schema['description']}.")
    return None
