"""The JSON API under /api/v1/ for the mobile app of organizations and residents.

Sign-in is FAB's JWT security API with the portal's rules (app.views.api_security): residents
by phone, e-mail or login; organizations by login, password and branch; both through the
security manager's throttled, audited password check, as on the web forms. Every resource is
limited to the user's own rows: an organization's accounts (their contract belongs to the
organization), a resident's bound accounts; another's id is simply not found. The ledger's
resources here are read-only; readings (api_readings), acts (api_acts) and autopay
(api_autopay) also take requests that change something, through the same services as the web.
The rules live in app.services; these classes parse, call and answer. The spec is served at
/api/v1/_openapi, Swagger UI at /swagger/v1 (FAB_API_SWAGGER_UI), and the API keeps to it
(tests/test_api_schema.py): what the spec refuses is a 400; a token missing, bad, expired or
of the other kind a 401 with ``WWW-Authenticate``; no right a 403; another's or no row a 404;
a method the address does not take a 405 with ``Allow``; a request the rules refuse a 422 —
each with a Russian ``message`` (app.views.api_refusals)."""
from __future__ import annotations

import io

from flask import current_app, g, request, send_file
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, fields

from app import models as m
from app.extensions import db
from app.services import accounts, audit, bill_documents
from app.views.api_acts import ActApi
from app.views.api_autopay import AutopayApi
from app.views.api_base import PDF_MIMETYPE, OwnRowsApi
from app.views.api_fields import (
    UtcDateTime,
    kwh_field,
    money_field,
)
from app.views.api_query import (
    MAX_ID,
)
from app.views.api_readings import ReadingApi
from app.views.base import content_disposition


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
    for api in (ContractApi, AccountApi, ChargeApi, InvoiceApi, PaymentApi, MeterApi,
                ReadingApi, ActApi, AutopayApi):
        appbuilder.add_api(api)
