"""The resident's lists of charges, bills, payments, readings and meters: FAB views whose every
query (list, show, search drop-downs) is limited by a base filter to the accounts bound to the
signed-in user, so an id from another user's cabinet is simply not found."""
from __future__ import annotations

from flask import g, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.widgets import ListWidget
from markupsafe import Markup
from sqlalchemy import select

from app import models as m
from app.extensions import db
from app.services.accounts import bound_account_ids
from app.views.base import PortalViewMixin
from app.views.cabinet import entrance

RESIDENT_PERMISSIONS = ["can_list", "can_show"]


class OwnAccountsFilter(BaseFilter):
    """Rows of the accounts bound to the signed-in user: by account, or by meter."""

    name = "Мои лицевые счета"
    arg_name = "own"

    def apply(self, query, value):
        user = getattr(g, "user", None)
        owned = bound_account_ids(db.session, user.id if user is not None else -1)
        model = self.model
        if model is m.PersonalAccount:
            return query.filter(model.id.in_(owned))
        if hasattr(model, "account_id"):
            return query.filter(model.account_id.in_(owned))
        return query.filter(model.meter_id.in_(
            select(m.Meter.id).where(m.Meter.account_id.in_(owned))))


OWN = [["id", OwnAccountsFilter, lambda: None]]


class ResidentModelView(PortalViewMixin, ModelView):
    """Read-only, own rows only, inside the cabinet's layout; anonymous visitors are sent to
    the residents' sign-in page."""

    base_permissions = RESIDENT_PERMISSIONS
    base_filters = OWN
    list_widget = ListWidget
    list_template = "cabinet/model_list.html"
    show_template = "cabinet/model_show.html"
    page_size = 20
    search_form_query_rel_fields = {"account": OWN, "meter": OWN}
    add_title = edit_title = "Только просмотр"

    def __init__(self, **kwargs):
        # No add or edit exists for residents; FAB still builds those forms, from these.
        self.add_columns = self.edit_columns = list(self.show_columns)
        super().__init__(**kwargs)
        self.list = entrance("ResidentAuthView.signin")(self.list)
        self.show = entrance("ResidentAuthView.signin")(self.show)


LABELS = {"account": "Лицевой счёт", "period": "Период", "meter": "Счётчик", "zone": "Зона",
          "status": "Статус"}


class ResidentChargeView(ResidentModelView):
    datamodel = SQLAInterface(m.Charge)
    route_base = "/cabinet/charges"
    list_title = show_title = "Начисления"
    label_columns = {**LABELS, "range_no": "Диапазон", "kwh": "кВт·ч",
                     "rate": "Тариф, руб./кВт·ч", "amount": "Сумма, руб.", "kind": "Вид",
                     "note": "Примечание"}
    list_columns = ["period", "account", "zone", "range_no", "kwh", "rate", "amount", "kind"]
    show_columns = ["period", "account", "meter", "zone", "range_no", "kwh", "rate", "amount",
                    "kind", "note"]
    search_columns = ["account", "period", "kind"]
    order_columns = ["period", "amount", "kwh"]
    base_order = ("period", "desc")
    choices_columns = {"kind": m.ChargeKind.labels}


class ResidentInvoiceView(ResidentModelView):
    datamodel = SQLAInterface(m.Invoice)
    route_base = "/cabinet/invoices"
    list_title = show_title = "Счета"
    label_columns = {**LABELS, "number": "Номер", "opening_balance": "Долг на начало, руб.",
                     "charged": "Начислено, руб.", "paid": "Оплачено, руб.",
                     "amount_due": "К оплате, руб.", "due_date": "Оплатить до",
                     "issued_at": "Выставлен", "id": "Счёт (PDF)"}
    list_columns = ["period", "number", "account", "opening_balance", "charged", "paid",
                    "amount_due", "due_date", "id"]
    show_columns = [*list_columns, "issued_at"]
    formatters_columns = {"id": lambda invoice_id: Markup(
        '<a href="{}"><i class="fa fa-file-pdf-o"></i> Скачать</a>').format(
        url_for("BillView.invoice", invoice_id=invoice_id))}
    search_columns = ["account", "period"]
    order_columns = ["period", "amount_due", "due_date"]
    base_order = ("period", "desc")


class ResidentPaymentView(ResidentModelView):
    datamodel = SQLAInterface(m.Payment)
    route_base = "/cabinet/payments"
    list_title = show_title = "Платежи"
    label_columns = {**LABELS, "amount": "Сумма, руб.", "method": "Способ",
                     "created_at": "Создан", "paid_at": "Оплачен"}
    list_columns = ["paid_at", "account", "amount", "method", "status"]
    show_columns = ["created_at", "paid_at", "account", "amount", "method", "status"]
    search_columns = ["account", "status", "paid_at"]
    order_columns = ["paid_at", "amount"]
    base_order = ("created_at", "desc")
    choices_columns = {"method": m.PaymentMethod.labels, "status": m.PaymentStatus.labels}


class ResidentReadingView(ResidentModelView):
    datamodel = SQLAInterface(m.Reading)
    route_base = "/cabinet/readings-history"
    list_title = show_title = "Показания"
    label_columns = {**LABELS, "t1": "T1, кВт·ч", "t2": "T2, кВт·ч", "t3": "T3, кВт·ч",
                     "source": "Источник", "submitted_at": "Передано",
                     "review_note": "Комментарий"}
    list_columns = ["period", "meter", "t1", "t2", "t3", "source", "status", "submitted_at"]
    show_columns = [*list_columns, "review_note"]
    search_columns = ["meter", "period", "status"]
    order_columns = ["period", "submitted_at"]
    base_order = ("period", "desc")
    choices_columns = {"source": m.ReadingSource.labels, "status": m.ReadingStatus.labels}


class ResidentMeterView(ResidentModelView):
    datamodel = SQLAInterface(m.Meter)
    route_base = "/cabinet/meters"
    list_title = show_title = "Приборы учёта"
    label_columns = {**LABELS, "serial": "Заводской номер", "model": "Модель",
                     "zones": "Тарифность", "digit_capacity": "Разрядность",
                     "installed_on": "Установлен", "verification_due": "Срок поверки",
                     "active": "Действует"}
    list_columns = ["serial", "account", "model", "zones", "verification_due", "active"]
    show_columns = ["serial", "account", "model", "zones", "digit_capacity", "installed_on",
                    "verification_due", "active"]
    search_columns = ["account", "serial"]
    order_columns = ["serial", "verification_due"]
    base_order = ("serial", "asc")
    choices_columns = {"zones": {1: "Однотарифный", 2: "Двухтарифный", 3: "Трёхтарифный"}}


RESIDENT_VIEWS = [ResidentChargeView, ResidentInvoiceView, ResidentPaymentView,
                  ResidentReadingView, ResidentMeterView]
