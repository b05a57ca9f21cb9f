"""The JSON API under /api/v1/ for the mobile app of organizations and residents.

Sign-in is FAB's JWT security API with the portal's rules (app.views.api_security): residents
by phone, e-mail or login; organizations by login, password and branch; both through the
security manager's throttled, audited password check, as on the web forms. Every resource is
read-only and limited by a base filter to the user's own rows: an organization's accounts
(their contract belongs to the organization), a resident's bound accounts; another's id is
simply not found.
The rules live in app.services; these classes parse, call and answer. The spec is served at
/api/v1/_openapi, Swagger UI at /swagger/v1 (FAB_API_SWAGGER_UI), and the API keeps to it
(tests/test_api_schema.py): what the spec refuses is a 400; a token missing, bad, expired or
of the other kind a 401 with ``WWW-Authenticate``; no right a 403; another's or no row a 404;
a method the address does not take a 405 with ``Allow``; a request the rules refuse a 422 —
each with a Russian ``message`` (app.views.api_refusals)."""
from __future__ import annotations

import io

import jsonschema
from flask import current_app, g, jsonify, request, send_file
from flask_appbuilder.api import BaseApi, ModelRestApi, expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError, fields

from app import models as m
from app.extensions import db, reads_only
from app.services import accounts, audit, bill_documents, own_rows
from app.views.api_fields import (
    UtcDateTime,
    error_body,
    kwh_field,
    money_field,
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
from app.views.base import RowsInterface, content_disposition

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


class ContractSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "Номер договора"})
    status = fields.String(required=True, metadata={"enum": m.ContractStatus.values()})
    signed_on = fields.Date(required=True)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True)


class ContractApi(OwnRowsApi):
    """The organization's contracts (a resident's: those of the bound accounts)."""

    resource_name = "contract"
    datamodel = SQLAInterface(m.Contract)
    row_schema = ContractSchema
    list_columns = ["id", "number", "status", "signed_on", "valid_from", "valid_to"]
    order_columns = ["number", "signed_on", "valid_from"]
    search_columns = ["number", "status"]
    base_order = ("number", "asc")


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "Номер лицевого счёта"})
    holder_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": m.AccountStatus.values()})
    contract_id = fields.Integer(allow_none=True)
    opened_on = fields.Date(required=True)
    closed_on = fields.Date(allow_none=True)
    address = fields.String(metadata={"description": "Адрес помещения"})
    charged = money_field("Начислено за всё время, руб.")
    paid = money_field("Оплачено за всё время (проведённые платежи), руб.")
    balance = money_field("Сальдо, руб.: больше нуля — долг, меньше — переплата")


class AccountApi(OwnRowsApi):
    """Personal accounts with their balance from the ledger."""

    resource_name = "account"
    datamodel = SQLAInterface(m.PersonalAccount)
    row_schema = AccountSchema
    list_columns = ["id", "number", "holder_name", "status", "contract_id", "opened_on",
                    "closed_on"]
    order_columns = ["number", "opened_on"]
    search_columns = ["number", "status", "contract_id"]
    base_order = ("number", "asc")

    computed_columns = staticmethod(accounts.summary_columns)


class ChargeSchema(Schema):
    id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    period = fields.Date(required=True, metadata={"description": "Первое число месяца"})
    meter_id = fields.Integer(allow_none=True)
    zone = fields.String(allow_none=True, metadata={"enum": ["T1", "T2", "T3", None]})
    range_no = fields.Integer(allow_none=True)
    kwh = kwh_field("Объём, кВт·ч", required=True)
    rate = fields.Decimal(places=4, as_string=True, allow_none=True, metadata={
        "type": "string", "format": "decimal", "description": "Тариф, руб./кВт·ч"})
    amount = money_field("Сумма, руб.", required=True)
    kind = fields.String(required=True, metadata={"enum": m.ChargeKind.values()})
    note = fields.String(allow_none=True)


class ChargeApi(OwnRowsApi):
    resource_name = "charge"
    datamodel = SQLAInterface(m.Charge)
    row_schema = ChargeSchema
    list_columns = ["id", "account_id", "period", "meter_id", "zone", "range_no", "kwh",
                    "rate", "amount", "kind", "note"]
    order_columns = ["period", "id"]
    search_columns = ["account_id", "period", "kind"]
    base_order = ("period", "desc")


class InvoiceSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    account_id = fields.Integer(required=True)
    period = fields.Date(required=True)
    opening_balance = money_field("Долг на начало периода, руб.", required=True)
    charged = money_field("Начислено, руб.", required=True)
    paid = money_field("Оплачено, руб.", required=True)
    amount_due = money_field("К оплате, руб.", required=True)
    due_date = fields.Date(required=True)
    issued_at = UtcDateTime(required=True)


class InvoiceApi(OwnRowsApi):
    """Bills, and each bill as the same PDF as on the web."""

    resource_name = "invoice"
    datamodel = SQLAInterface(m.Invoice)
    row_schema = InvoiceSchema
    include_route_methods = {"get", "get_list", "pdf"}
    list_columns = ["id", "number", "account_id", "period", "opening_balance", "charged",
                    "paid", "amount_due", "due_date", "issued_at"]
    order_columns = ["period", "due_date", "id"]
    search_columns = ["account_id", "period", "number"]
    base_order = ("period", "desc")

    @expose("/<int:pk>/pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def pdf(self, pk: int):
        """The bill as PDF
        ---
        get:
          summary: Счёт в PDF
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
              description: PDF счёта
              content:
                application/pdf:
                  schema:
                    type: string
                    format: binary
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        invoice = self.datamodel.get(pk, self._base_filters) if 0 < pk <= MAX_ID else None
        if invoice is None:
            return self.response_404()
        account = invoice.account
        body = bill_documents.bill_pdf(db.session, invoice, current_app.config)
        audit.record(db.session, "export.pdf", actor_id=g.user.id, object_type="account",
                     object_id=account.id, ip=request.remote_addr,
                     details={"page": "api", "document": "bill", "invoice": invoice.number})
        name = f"bill_{account.number}_{invoice.period:%Y-%m}.pdf"
        response = send_file(io.BytesIO(body), mimetype=PDF_MIMETYPE, as_attachment=True,
                             download_name=name)
        response.headers["Content-Disposition"] = content_disposition(
            f"Счёт_{account.number}_{invoice.period:%Y-%m}.pdf", fallback=name)
        response.headers["Cache-Control"] = "private, no-store"
        return response


class PaymentSchema(Schema):
    id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    amount = money_field("Сумма, руб.", required=True)
    method = fields.String(required=True, metadata={"enum": m.PaymentMethod.values()})
    status = fields.String(required=True, metadata={"enum": m.PaymentStatus.values()})
    created_at = UtcDateTime(required=True)
    paid_at = UtcDateTime(allow_none=True)


class PaymentApi(OwnRowsApi):
    resource_name = "payment"
    datamodel = SQLAInterface(m.Payment)
    row_schema = PaymentSchema
    list_columns = ["id", "account_id", "amount", "method", "status", "created_at", "paid_at"]
    order_columns = ["created_at", "paid_at", "id"]
    search_columns = ["account_id", "status", "method"]
    base_order = ("created_at", "desc")


class MeterSchema(Schema):
    id = fields.Integer(required=True)
    serial = fields.String(required=True, metadata={"description": "Заводской номер"})
    account_id = fields.Integer(required=True)
    model = fields.String(allow_none=True)
    zones = fields.Integer(required=True, metadata={"enum": [1, 2, 3],
                                                    "description": "Число тарифных зон"})
    digit_capacity = fields.Integer(required=True, metadata={"description": "Разрядность"})
    installed_on = fields.Date(allow_none=True)
    verification_due = fields.Date(allow_none=True)
    active = fields.Boolean(required=True)


class MeterApi(OwnRowsApi):
    """Meters of the user's accounts: the ids the readings submission takes."""

    resource_name = "meter"
    datamodel = SQLAInterface(m.Meter)
    row_schema = MeterSchema
    list_columns = ["id", "serial", "account_id", "model", "zones", "digit_capacity",
                    "installed_on", "verification_due", "active"]
    order_columns = ["serial", "id"]
    search_columns = ["account_id", "serial"]
    base_order = ("serial", "asc")


def register_api(appbuilder) -> None:
    """Add every API class (the security API comes from the security manager)."""
    from app.views.api_acts import ActApi
    from app.views.api_readings import ReadingApi

    for api in (ContractApi, AccountApi, ChargeApi, InvoiceApi, PaymentApi, MeterApi,
                ReadingApi, ActApi):
        appbuilder.add_api(api)
