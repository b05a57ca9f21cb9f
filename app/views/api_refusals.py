"""The JSON API's refusals as its spec documents them: each a JSON ``message`` in Russian, with
the headers RFC 9110 and RFC 6750 ask for; every operation lists those it can give."""
from __future__ import annotations


def _answer(description: str, headers: dict | None = None, errors: bool = False) -> dict:
    """A refusal in the spec: JSON with a Russian ``message`` (and its required headers)."""
    properties = {"message": {"type": "string", "description": "Что не так, для человека"}}
    if errors:
        properties["errors"] = {"type": "object", "additionalProperties": True,
                                "description": "Ошибки по полям запроса"}
    answer = {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "required": ["message"], "properties": properties}}}}
    if headers:
        answer["headers"] = {name: {"required": True, "description": text, "schema": {
            "type": kind}} for name, (kind, text) in headers.items()}
    return answer


#: The API's refusals, each under its own name (FAB's "400".."500" are its English ones): the
#: spec of every operation lists each it can give (``PortalApiMixin.operation_helper``).
ERROR_RESPONSES = {
    "BadRequest": _answer(
        "Запрос не соответствует описанию: не JSON, не те поля или типы, значение вне "
        "допустимого, испорченные символы (NUL, не UTF-8)", errors=True),
    "Unauthorized": _answer(
        "Нет токена, токен испорчен, истёк, другого вида (refresh вместо access и наоборот) "
        "или больше не действует (выход из приложения или из кабинета на всех устройствах, "
        "новый пароль, учётная запись отключена)",
        {"WWW-Authenticate": ("string", "Bearer, по RFC 6750")}),
    "SignInFailed": _answer("Неверный логин, пароль или филиал"),
    "Forbidden": _answer("Нет доступа: у учётной записи нет прав на эту операцию"),
    "NotFound": _answer("Не найдено (или принадлежит другому клиенту: ответ тот же)"),
    "MethodNotAllowed": _answer("Адрес не принимает этот метод",
                                {"Allow": ("string", "Методы, которые адрес принимает")}),
    "PayloadTooLarge": _answer("Тело запроса больше допустимого"),
    "Unprocessable": _answer(
        "Запрос составлен верно, но правила его не допускают (показание меньше предыдущего, "
        "приём показаний закрыт, акт уже запрошен и т. п.): причина в message"),
    "TooManyRequests": _answer("Слишком много попыток: повторите позже",
                               {"Retry-After": ("integer", "Через сколько секунд повторить")}),
}
#: Refusals every operation may give: the input guard's (before any view) and a method the
#: address does not take.
EVERY_OPERATION = {"400": "BadRequest", "405": "MethodNotAllowed"}
#: And every operation behind a token, every operation with a body.
WITH_TOKEN = {"401": "Unauthorized"}
WITH_BODY = {"413": "PayloadTooLarge"}


def document_refusals(operation: dict) -> None:
    """Add to an operation's spec the refusals any such operation can give (its own, from the
    docstring, stay), its status codes as strings and in order."""
    refusals = {**EVERY_OPERATION, **(WITH_TOKEN if operation.get("security") else {}),
                **(WITH_BODY if "requestBody" in operation else {})}
    responses = {str(code): answer  # YAML reads ``200:`` as a number
                 for code, answer in operation.get("responses", {}).items()}
    for code, name in refusals.items():
        responses.setdefault(code, {"$ref": f"#/components/responses/{name}"})
    operation["responses"] = dict(sorted(responses.items()))
