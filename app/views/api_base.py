"""The API's common ground: refusals in Russian, the own-rows filter and the base class of
every resource (app.views.api, api_readings, api_acts) and of the security API."""
from __future__ import annotations

import jsonschema
from flask import g, jsonify, request
from flask_appbuilder.api import BaseApi, ModelRestApi, expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError

from app.extensions import db, reads_only
from app.services import own_rows
from app.views.api_fields import (
    error_body,
)
from app.views.api_query import (
    FILTER_OPERATIONS,
    FILTER_VALUES,
    MAX_ID,
    NOT_RISON,
    filter_error,
    list_query,
    query_error,
    value_validator,
)
from app.views.api_refusals import ERROR_RESPONSES, document_refusals
from app.views.base import RowsInterface

API_VERSION = "v1"
PDF_MIMETYPE = "application/pdf"

NOT_JSON = "Тело запроса должно быть объектом JSON."
BAD_INPUT = "Проверьте данные запроса."
NOT_FOUND = "Не найдено."
#: flask-jwt-extended's and FAB's answers, in Russian and under ``message`` as the spec says.
TOKEN_MISSING = "Нужен вход: передайте access-токен в заголовке Authorization: Bearer <токен>."
TOKEN_INVALID = "Токен испорчен или недействителен."
#: flask-jwt-extended's reason for a token of the other kind -> what the caller should send.
TOKEN_OF_ANOTHER_KIND = {"Only non-refresh tokens are allowed": "Нужен access-токен, а не refresh.",
                         "Only refresh tokens are allowed": "Нужен refresh-токен, а не access."}
TOKEN_EXPIRED = "Срок действия токена истёк: обновите его (refresh) или войдите заново."
SIGN_IN_AGAIN = "Войдите заново."
#: RFC 6750's challenge on every token refusal: no token, or one that is not (or no longer) good.
CHALLENGE = 'Bearer realm="api"'
BAD_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'
FORBIDDEN = "Нет доступа."
NOT_PROCESSED = "Запрос не удалось обработать."
INTERNAL_ERROR = "Внутренняя ошибка. Попробуйте позже."


def unauthorized(message: str, challenge: str = BAD_TOKEN_CHALLENGE):
    """A token refusal: 401 with the challenge, whatever is wrong with the token (a client
    signs in again or refreshes on 401; a malformed token or one of the other kind is no
    different)."""
    return jsonify(message=message), 401, {"WWW-Authenticate": challenge}


def token_error_answers(jwt_manager) -> None:
    """flask-jwt-extended's refusals as the API's other errors: ``message``, in Russian."""
    jwt_manager.unauthorized_loader(lambda _reason: unauthorized(TOKEN_MISSING, CHALLENGE))
    jwt_manager.invalid_token_loader(
        lambda reason: unauthorized(TOKEN_OF_ANOTHER_KIND.get(reason, TOKEN_INVALID)))
    jwt_manager.expired_token_loader(lambda *_args: unauthorized(TOKEN_EXPIRED))
    for loader in (jwt_manager.user_lookup_error_loader, jwt_manager.needs_fresh_token_loader,
                   jwt_manager.revoked_token_loader,
                   jwt_manager.token_verification_failed_loader):
        loader(lambda *_args: unauthorized(SIGN_IN_AGAIN))


# ---------------------------------------------------------------------------------------------
# Whose rows: the one dispatch from a user to the service that says which accounts are theirs.

def visible_account_ids(user):
    """A subquery of the accounts the API user may see (app.services.own_rows)."""
    return own_rows.visible_account_ids(db.session, user)


class OwnRowsFilter(BaseFilter):
    """Rows of the signed-in user's accounts, contracts and acts (app.services.own_rows)."""

    name = "Мои лицевые счета"
    arg_name = "own"

    def apply(self, query, value):
        return query.filter(own_rows.condition(db.session, getattr(g, "user", None),
                                               self.model))


OWN = [["id", OwnRowsFilter, lambda: None]]


class PortalApiMixin:
    """Common to every portal API: version, JSON errors with a Russian message, the spec's
    shared responses, JWT only (no session cookies)."""

    version = API_VERSION
    allow_browser_login = False
    responses = ERROR_RESPONSES

    def operation_helper(self, path=None, operations=None, methods=None, func=None, **kwargs):
        """FAB's operation spec from the docstring, plus an operationId (for links and client
        generators), the refusals any such operation can give, and JWT alone as its security
        (FAB also names API keys, which the portal does not take)."""
        super().operation_helper(path=path, operations=operations, methods=methods, func=func,
                                 **kwargs)
        for method in methods or ():
            operation = operations.get(method.lower())
            if not operation:
                continue
            operation.setdefault("operationId", f"{self.resource_name}_{func.__name__}")
            if operation.get("security") == [{"jwt": []}, {"api_key": []}]:
                operation["security"] = [{"jwt": []}]
            document_refusals(operation)

    def json_body(self, schema: Schema):
        """The request's JSON body loaded by ``schema``; ValidationError when it is not."""
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise ValidationError(NOT_JSON)
        return schema.load(payload)

    def response_invalid(self, error: ValidationError):
        messages = error.messages
        if isinstance(messages, list):
            return self.response(400, **error_body(" ".join(map(str, messages))))
        return self.response(400, **error_body(BAD_INPUT, messages))

    def response_404(self):
        return self.response(404, message=NOT_FOUND)

    # FAB's own refusals (its decorators call these) in Russian.

    def response_400(self, message: str | None = None):
        if message is None or message.startswith("Not a valid rison"):
            message = NOT_RISON if message else BAD_INPUT
        return self.response(400, message=message)

    def response_401(self):
        response = self.response(401, message=TOKEN_MISSING)
        response.headers["WWW-Authenticate"] = CHALLENGE
        return response

    def response_403(self):
        return self.response(403, message=FORBIDDEN)

    def response_422(self, message: str | None = None):
        return self.response(422, message=message or NOT_PROCESSED)

    def response_500(self, message: str | None = None):
        return self.response(500, message=INTERNAL_ERROR)


# ---------------------------------------------------------------------------------------------
# Read-only resources


class OwnRowsApi(PortalApiMixin, ModelRestApi):
    """List and show of the user's own rows. The query ``q`` (rison or JSON) takes page,
    page_size, order_column, order_direction and filters on the columns listed in the spec."""

    include_route_methods = {"get", "get_list"}
    base_filters = OWN
    page_size = 20
    max_page_size = 100
    #: The marshmallow schema of one row, for list and show alike.
    row_schema: type[Schema]

    @staticmethod
    def computed_columns() -> list:
        """Labelled expressions read with each row besides ``list_columns``."""
        return []

    def __init__(self):
        schema = self.row_schema()
        self.list_model_schema = self.show_model_schema = schema
        self.add_model_schema = self.edit_model_schema = schema
        self.show_columns = self.show_columns or self.list_columns
        self.datamodel = RowsInterface(self.datamodel.obj, self.list_columns,
                                       computed=self.computed_columns())
        super().__init__()
        # Checked once here: jsonschema.validate() would check the schema itself (against
        # the meta-schema) on every request, about a third of a list request's time. The
        # shape of ``q`` first (its messages name the field), then each filter's column.
        schema = self.list_query_schema()
        schema["properties"]["filters"]["items"].pop("oneOf")
        self.list_query_validator = jsonschema.validators.validator_for(schema)(schema)
        self.filter_rules = {column: (operations, value_validator(value))
                             for column, (operations, value) in self.filter_columns().items()}

    def filter_columns(self) -> dict[str, tuple[list[str], dict]]:
        """Each column ``q`` filters on: the operations FAB has for its type (of
        FILTER_OPERATIONS), and the value it takes."""
        available = self._filters.get_search_filters()
        columns = {}
        for column in self.search_columns:
            names = {search.arg_name for search in available[column]}
            kind = ("integer" if self.datamodel.is_integer(column) else
                    "date" if self.datamodel.is_date(column) else "text")
            columns[column] = ([name for name in FILTER_OPERATIONS if name in names],
                               FILTER_VALUES[kind])
        return columns

    def list_query_schema(self) -> dict:
        """The JSON schema of ``q`` for this resource (also its spec component): a filter
        is one of the columns, with the operations and the value that column takes."""
        return {
            "type": "object", "additionalProperties": False,
            "properties": {
                "page": {"type": "integer", "minimum": 0, "maximum": 100000},
                "page_size": {"type": "integer", "minimum": 1,
                              "maximum": self.max_page_size},
                "order_column": {"type": "string", "enum": list(self.order_columns)},
                "order_direction": {"type": "string", "enum": ["asc", "desc"]},
                "filters": {"type": "array", "maxItems": 10, "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["col", "opr", "value"],
                    "properties": {
                        "col": {"type": "string", "enum": list(self.search_columns)},
                        "opr": {"type": "string", "enum": FILTER_OPERATIONS},
                        "value": {"type": "string", "maxLength": 100},
                    },
                    "oneOf": [{"properties": {
                        "col": {"type": "string", "enum": [column]},
                        "opr": {"type": "string", "enum": operations},
                        "value": value}}
                        for column, (operations, value) in self.filter_columns().items()],
                }},
            },
        }

    def add_apispec_components(self, api_spec):
        """The shared responses, this resource's row and its ``q`` (FAB's own would add
        schemas of the add and edit endpoints this read-only resource does not have)."""
        name = self.__class__.__name__
        api_spec.components.schema(f"{name}.get", schema=self.row_schema)
        BaseApi.add_apispec_components(self, api_spec)
        api_spec.components.schema(f"{name}.list_query", self.list_query_schema())

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @reads_only
    def get_list(self, **kwargs):
        """The user's rows, a page at a time
        ---
        get:
          summary: Список (только свои записи)
          parameters:
          - in: query
            name: q
            description: page, page_size, order_column, order_direction, filters (rison или JSON)
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/{{self.__class__.__name__}}.list_query'
          responses:
            200:
              description: Страница записей
              content:
                application/json:
                  schema:
                    type: object
                    required: [count, ids, result]
                    properties:
                      count:
                        type: integer
                        description: Всего записей
                      ids:
                        type: array
                        items:
                          type: integer
                      result:
                        type: array
                        items:
                          $ref: '#/components/schemas/{{self.__class__.__name__}}.get'
            403:
              $ref: '#/components/responses/Forbidden'
        """
        try:
            args = list_query(request.args.get("q"))
        except ValueError as problem:
            return self.response(400, message=str(problem))
        error = jsonschema.exceptions.best_match(self.list_query_validator.iter_errors(args))
        if error is not None:
            return self.response(400, message=query_error(error))
        message = filter_error(args.get("filters", []), self.filter_rules)
        if message:
            return self.response(400, message=message)
        return self.get_list_headless(rison=args)

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @reads_only
    def get(self, pk: int, **kwargs):
        """One of the user's rows; another's id is 404, like a missing one
        ---
        get:
          summary: Одна запись
          parameters:
          - in: path
            name: pk
            required: true
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          responses:
            200:
              description: Запись
              content:
                application/json:
                  schema:
                    type: object
                    required: [id, result]
                    properties:
                      id:
                        type: integer
                      result:
                        $ref: '#/components/schemas/{{self.__class__.__name__}}.get'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        row = self.datamodel.get_row(pk, self._base_filters) if 0 < pk <= MAX_ID else None
        if row is None:
            return self.response_404()
        return self.response(200, id=pk, result=self.show_model_schema.dump(row))
