"""Back-office ledger: charges and their corrections, bills, payments and their refunds."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import models as m
from app.extensions import db
from app.services import billing, payment_states
from app.views.admin_common import POSITIVE, RANGES, ZONES, RowRefused, labels
from app.views.base import CAN_APPEND, CAN_READ, PortalModelView, current_user_id
from app.views.guards import FitsColumn


class ChargeView(PortalModelView):
    """The ledger's debit side: corrections are added as new rows, never edited or deleted."""

    datamodel = SQLAInterface(m.Charge)
    base_permissions = CAN_APPEND
    list_title, show_title = "Начисления", "Начисление"
    add_title, edit_title = "Корректировка начисления", "Начисление"
    label_columns = labels(
        kwh="Объём, кВт·ч", rate="Тариф, руб./кВт·ч", amount="Сумма, руб.",
        kind="Вид начисления", note="Основание", created_at="Дата записи")
    list_columns = ["account", "period", "kind", "zone", "range_no", "kwh", "rate", "amount"]
    show_columns = ["account", "period", "kind", "meter", "zone", "range_no", "kwh", "rate",
                    "amount", "note", "created_at"]
    add_columns = ["account", "period", "kind", "meter", "zone", "range_no", "kwh", "rate",
                   "amount", "note"]
    search_columns = ["account", "period", "kind", "zone", "created_at"]
    order_columns = ["period", "kind", "zone", "range_no", "kwh", "rate", "amount",
                     "created_at"]
    base_order = ("period", "desc")
    choices_columns = {"kind": m.ChargeKind.labels, "zone": ZONES, "range_no": RANGES}
    choices_coerce = {"range_no": int}
    validators_columns = {column: [FitsColumn(getattr(m.Charge, column))]
                          for column in ("kwh", "rate", "amount")}
    description_columns = {
        "amount": "Положительная сумма увеличивает долг, отрицательная уменьшает",
        "note": "Почему сделана корректировка: номер обращения, акта, служебной записки",
        "period": "Открытый период: месяц, за который счёт по лицевому счёту ещё не выставлен",
    }

    def clean_row(self, item):
        try:
            billing.check_correction(db.session, item.account_id, item.period)
        except billing.BillingError as error:
            raise RowRefused(str(error)) from error


class InvoiceView(PortalModelView):
    """Monthly bills, derived from the ledger by the billing run: read-only here."""

    datamodel = SQLAInterface(m.Invoice)
    base_permissions = CAN_READ
    list_title, show_title = "Счета", "Счёт"
    add_title, edit_title = "Новый счёт", "Счёт"
    label_columns = labels(
        number="Номер счёта", opening_balance="Входящее сальдо, руб.", charged="Начислено, руб.",
        paid="Оплачено, руб.", amount_due="К оплате, руб.", due_date="Оплатить до",
        issued_at="Дата выставления")
    list_columns = ["number", "account", "period", "opening_balance", "charged", "paid",
                    "amount_due", "due_date"]
    show_columns = [*list_columns, "issued_at"]
    search_columns = ["number", "account", "period", "due_date", "amount_due"]
    order_columns = ["number", "period", "opening_balance", "charged", "paid", "amount_due",
                     "due_date"]
    base_order = ("period", "desc")


class PaymentView(PortalModelView):
    """Payments: gateway payments arrive by themselves; finance registers bank and cash ones."""

    datamodel = SQLAInterface(m.Payment)
    base_permissions = CAN_APPEND
    list_title, show_title = "Платежи", "Платёж"
    add_title, edit_title = "Регистрация платежа", "Платёж"
    label_columns = labels(
        amount="Сумма, руб.", method="Способ оплаты", gateway="Платёжный шлюз",
        external_id="Номер операции в платёжной системе", order_key="Ключ заказа",
        user="Плательщик", created_at="Создан", paid_at="Дата оплаты", updated_at="Изменён")
    list_columns = ["account", "amount", "method", "status", "paid_at", "created_at"]
    show_fieldsets = [
        ("Платёж", {"fields": ["account", "amount", "method", "status", "paid_at"]}),
        ("Платёжная система", {"fields": ["gateway", "external_id", "order_key", "user"]}),
        ("Служебные отметки", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    add_columns = ["account", "amount", "method", "status", "paid_at", "external_id"]
    search_columns = ["account", "amount", "method", "status", "gateway", "external_id",
                      "paid_at", "created_at"]
    order_columns = ["amount", "method", "status", "paid_at", "created_at"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.PaymentStatus.labels, "method": m.PaymentMethod.labels}
    validators_columns = {"amount": [FitsColumn(m.Payment.amount), POSITIVE]}
    description_columns = {
        "external_id": "Номер платёжного поручения или операции банка, если есть",
        "paid_at": "Когда деньги поступили (для банковских и кассовых платежей)",
    }

    #: A refund appends to the ledger like registering a payment: finance may, staff may not.
    method_permission_name = {"refund": "add"}

    @action("refund", "Вернуть онлайн-оплату",
            "Вернуть деньги плательщику за выбранные онлайн-платежи? Сумма снова станет "
            "задолженностью по лицевому счёту.", "fa-undo")
    def refund(self, items):
        rows = items if isinstance(items, list) else [items]
        result = payment_states.refund(db.session, [r.id for r in rows if r is not None],
                                       current_user_id(), request.remote_addr)
        if result.done:
            flash(f"Возвращено платежей: {len(result.done)}.", "success")
        if result.refused:
            flash(f"Не возвращено платежей: {len(result.refused)}. Вернуть можно только "
                  "оплаченный онлайн платёж, один раз.", "warning")
        return redirect(url_for(".list"))
