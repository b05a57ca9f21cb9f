"""The resident's histories: charges, bills, payments, readings and meters. FAB model views stay
the data source (their base filter limits every query to the accounts bound to the signed-in
user, so another user's id is simply not found; FAB applies the filters, the order and the
page), but each renders the cabinet's own page: a month (or a payment) per row with the amount
and its status first, plain filters by account and year, «Назад»/«Вперёд», and a record page of
label/value lines (cabinet/history_list.html, cabinet/history_show.html, cabinet/history/)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import abort, current_app, request, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.views import expose
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy.orm import joinedload

from app import models as m
from app.extensions import db, reads_only
from app.services import autopay, histories, own_rows
from app.services.histories import PAGE_SIZE, Choice
from app.views import formats
from app.views.base import PortalViewMixin
from app.views.cabinet import entrance

RESIDENT_PERMISSIONS = ["can_list", "can_show"]


class OwnAccountsFilter(BaseFilter):
    """Rows of the accounts bound to the signed-in user: by account, or by meter."""

    name = "Мои лицевые счета"
    arg_name = "own"

    def apply(self, query, value):
        user = current_user if current_user.is_authenticated else None
        return query.filter(own_rows.condition(db.session, user, self.model))


class AccountFilter(BaseFilter):
    """The «Лицевой счёт» control: one of the user's accounts (checked before it is applied;
    the base filter keeps any other out anyway)."""

    name = "Лицевой счёт"
    arg_name = "account"

    def apply(self, query, account_id):
        return query.filter(own_rows.of_accounts(self.model, [account_id]))


class YearFilter(BaseFilter):
    """The «Период» control: a calendar year of the column (a period, or a payment's time,
    by the portal's local midnight)."""

    name = "Год"
    arg_name = "year"

    def apply(self, query, year):
        column = getattr(self.model, self.column_name)
        tz = (current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Europe/Moscow")
              if self.datamodel.is_datetime(self.column_name) else None)
        start, end = histories.year_bounds(year, tz)
        return query.filter(column >= start, column < end)


OWN = [["id", OwnAccountsFilter, lambda: None]]


@dataclass(frozen=True)
class Row:
    """A history's row for the templates: the record and its status chip (or None)."""

    item: object
    status: histories.Status | None = None


class ResidentModelView(PortalViewMixin, ModelView):
    """Read-only, own rows only, in the cabinet's own pages; anonymous visitors are sent to
    the residents' sign-in page. A subclass names its row partial, the column of its «Период»
    (None: no year filter) and says how a row's status reads."""

    base_permissions = RESIDENT_PERMISSIONS
    base_filters = OWN
    list_template = "cabinet/history_list.html"
    show_template = "cabinet/history_show.html"
    row_template = ""
    year_column: str | None = "period"
    account_column = "account"
    page_size = PAGE_SIZE
    search_columns = ["account"]
    search_form_query_rel_fields = {"account": OWN, "meter": OWN}
    add_title = edit_title = "Только просмотр"
    #: What the list says when there is nothing to show, and when the filters leave nothing.
    empty_text = empty_filtered_text = ""

    def __init__(self, **kwargs):
        # No add or edit exists for residents; FAB still builds those forms, from these.
        self.add_columns = self.edit_columns = list(self.show_columns)
        super().__init__(**kwargs)
        self.list = entrance("ResidentAuthView.signin")(self.list)
        self.show = entrance("ResidentAuthView.signin")(self.show)

    # What a subclass tells -------------------------------------------------------------------

    def row_columns(self) -> list:
        """Computed columns read with each row (passed to ``status_of``)."""
        return []

    def row_loads(self) -> list:
        """Loader options beyond the relations the list shows (FAB's EagerInterface)."""
        return []

    def status_of(self, item, *computed) -> histories.Status | None:
        return None

    def heading(self, item) -> str:
        return str(self.show_title)

    def has_actions(self, rows) -> bool:
        """Whether some row carries buttons: the list then keeps a column for them on a wide
        screen, so that the amounts line up."""
        return False

    # Reading ---------------------------------------------------------------------------------

    def _rows(self, filters, page: int) -> tuple[int, list[Row]]:
        """A page of rows with the number of rows of all pages, in one statement: FAB's filters
        (the base filter first), the view's order and FAB's paging."""
        order_column, direction = self.base_order
        query = db.session.query(self.datamodel.obj, *self.row_columns())
        query = self.datamodel.apply_all(query, filters, order_column, direction, page - 1,
                                         PAGE_SIZE)
        found = query.options(*self.row_loads()).add_columns(func.count().over()).all()
        if not found:
            count = self.datamodel.query_count(db.session.query(self.datamodel.obj),
                                               filters) if page > 1 else 0
            return count, []
        return found[0][-1], [Row(r[0], self.status_of(*r[:-1])) for r in found]

    def _list_rows(self, filters, page: int) -> tuple[int, list]:
        return self._rows(filters, page)

    def _chosen_filters(self, choice: Choice):
        filters = self._base_filters.copy()
        if choice.account is not None:
            filters.add_filter(self.account_column, AccountFilter, choice.account)
        if choice.year is not None and self.year_column:
            filters.add_filter(self.year_column, YearFilter, choice.year)
        return filters

    def _page_url(self, choice: Choice, page: int) -> str:
        args = {"account": choice.account, "year": choice.year, "page": page}
        query = urlencode({k: v for k, v in args.items() if v is not None and v != 1})
        return url_for(f"{self.__class__.__name__}.list") + (f"?{query}" if query else "")

    @expose("/list/")
    @has_access
    @reads_only
    def list(self):
        accounts = histories.own_accounts(db.session, current_user.id)
        today = formats.local_today()
        years = histories.offered_years(accounts, today) if self.year_column else []
        choice = histories.parse_choice(request.args, [a.id for a in accounts], years)
        count, rows = self._list_rows(self._chosen_filters(choice), choice.page)
        pages = histories.pages(count)
        if choice.page > pages:
            choice.errors.append(f"Страницы {choice.page} нет: показана последняя.")
            choice.page = pages
            count, rows = self._list_rows(self._chosen_filters(choice), choice.page)
        return self.render_template(
            self.list_template, title=self.list_title, view=self, rows=rows, count=count,
            accounts=accounts, years=years, choice=choice, page=choice.page, pages=pages,
            previous_url=self._page_url(choice, choice.page - 1) if choice.page > 1 else None,
            next_url=self._page_url(choice, choice.page + 1) if choice.page < pages else None,
            filtered=choice.account is not None or choice.year is not None,
            reading_account=self._reading_account(accounts, choice), **self.words())

    @expose("/show/<pk>")
    @has_access
    @reads_only
    def show(self, pk):
        if not pk.isascii() or not pk.isdigit() or len(pk) > 18:
            abort(404)
        filters = self._base_filters.copy().add_filter("id", FilterEqual, int(pk))
        _count, rows = self._rows(filters, 1)
        if not rows:
            abort(404)
        row = rows[0]
        return self.render_template(self.show_template, title=self.heading(row.item),
                                    view=self, row=row, **self.words())

    @staticmethod
    def _reading_account(accounts, choice: Choice):
        """Where «Передать показания» leads: the chosen (or only) account, else None."""
        if choice.account is not None:
            return choice.account
        return accounts[0].id if len(accounts) == 1 else None

    @staticmethod
    def words() -> dict:
        """The plain words of zones, ranges and meters, for the row partials."""
        return {"zone_name": histories.zone_name, "range_name": histories.range_name,
                "registers": histories.registers, "meter_kind": histories.meter_kind,
                "payment_method": m.PaymentMethod.label, "reading_source": m.ReadingSource.label,
                "charge_kind": m.ChargeKind.label}


#: Column labels: FAB still builds forms from the columns, and every label is Russian.
LABELS = {"account": "Лицевой счёт", "period": "Период", "meter": "Счётчик", "zone": "Зона",
          "status": "Статус"}


class ResidentChargeView(ResidentModelView):
    """Charges a month per row (per account): the month's total, its lines under it."""

    datamodel = SQLAInterface(m.Charge)
    route_base = "/cabinet/charges"
    list_title = "Начисления"
    show_title = "Начисление"
    row_template = "cabinet/history/_charge.html"
    label_columns = {**LABELS, "range_no": "Диапазон", "kwh": "кВт·ч",
                     "rate": "Тариф, руб./кВт·ч", "amount": "Сумма, руб.", "kind": "Вид",
                     "note": "Примечание"}
    choices_columns = {"kind": m.ChargeKind.labels}
    list_columns = ["period", "account", "meter", "zone", "range_no", "kwh", "rate", "amount",
                    "kind"]
    show_columns = ["period", "account", "meter", "zone", "range_no", "kwh", "rate", "amount",
                    "kind", "note"]
    base_order = ("period", "desc")
    empty_text = "Начислений пока нет."
    empty_filtered_text = "За выбранный период начислений нет."

    def heading(self, item) -> str:
        return f"Начисление за {formats.month(item.period)}"

    def _list_rows(self, filters, page: int):
        numbered = self.datamodel.apply_filters(
            db.session.query(*histories.month_numbers()), filters).subquery()
        return histories.charge_month_page(
            db.session, numbered, page,
            options=(joinedload(m.Charge.account), joinedload(m.Charge.meter)))


class ResidentInvoiceView(ResidentModelView):
    """Bills a month per row: the amount due, paid or not, the PDF and «Оплатить»."""

    datamodel = SQLAInterface(m.Invoice)
    route_base = "/cabinet/invoices"
    list_title = "Счета"
    show_title = "Счёт"
    row_template = "cabinet/history/_invoice.html"
    label_columns = {**LABELS, "number": "Номер", "opening_balance": "Долг на начало, руб.",
                     "charged": "Начислено, руб.", "paid": "Оплачено, руб.",
                     "amount_due": "К оплате, руб.", "due_date": "Оплатить до",
                     "issued_at": "Выставлен"}
    list_columns = ["period", "number", "account", "opening_balance", "charged", "paid",
                    "amount_due", "due_date"]
    show_columns = [*list_columns, "issued_at"]
    base_order = ("period", "desc")
    empty_text = "Счетов пока не выставлялось."
    empty_filtered_text = "За выбранный период счетов нет."

    def heading(self, item) -> str:
        return f"Счёт за {formats.month(item.period)}"

    def row_columns(self):
        return [histories.paid_since_issue()]

    def has_actions(self, rows) -> bool:
        return bool(rows)

    def status_of(self, item, paid_since=None):
        return histories.bill_status(item.amount_due, item.due_date, formats.local_today(),
                                     paid_since)


class ResidentPaymentView(ResidentModelView):
    """Payments newest first: the date, the amount and whether it went through."""

    datamodel = SQLAInterface(m.Payment)
    route_base = "/cabinet/payments"
    list_title = "Платежи"
    show_title = "Платёж"
    row_template = "cabinet/history/_payment.html"
    label_columns = {**LABELS, "amount": "Сумма, руб.", "method": "Способ",
                     "created_at": "Создан", "paid_at": "Оплачен"}
    choices_columns = {"method": m.PaymentMethod.labels, "status": m.PaymentStatus.labels}
    year_column = "created_at"
    list_columns = ["created_at", "paid_at", "account", "amount", "method", "status"]
    show_columns = list_columns
    base_order = ("created_at", "desc")
    empty_text = "Платежей пока нет."
    empty_filtered_text = "За выбранный период платежей нет."

    def heading(self, item) -> str:
        return f"Платёж от {formats.timestamp(item.paid_at or item.created_at)}"

    def row_columns(self):
        return [autopay.made_by_autopay()]

    def status_of(self, item, made_by_autopay=False):
        return autopay.payment_status(item.status, made_by_autopay)

    def has_actions(self, rows) -> bool:
        return any(self.receipt_key(row.item) for row in rows)

    @staticmethod
    def receipt_key(payment) -> str | None:
        """The order whose receipt the user may download: a succeeded payment of their own
        through the gateway (PayView.receipt answers only its payer)."""
        if (payment.status == "succeeded" and payment.order_key
                and payment.user_id == current_user.id
                and "PayView.receipt" in current_app.view_functions):
            return payment.order_key
        return None


class ResidentReadingView(ResidentModelView):
    """Readings a month per row: the values by zone, and whether they were accepted."""

    datamodel = SQLAInterface(m.Reading)
    route_base = "/cabinet/readings-history"
    list_title = "Показания"
    show_title = "Показания"
    row_template = "cabinet/history/_reading.html"
    label_columns = {**LABELS, "t1": "T1, кВт·ч", "t2": "T2, кВт·ч", "t3": "T3, кВт·ч",
                     "source": "Источник", "submitted_at": "Передано",
                     "review_note": "Комментарий"}
    choices_columns = {"source": m.ReadingSource.labels, "status": m.ReadingStatus.labels}
    account_column = "meter"
    search_columns = ["meter"]
    list_columns = ["period", "meter", "t1", "t2", "t3", "source", "status", "submitted_at"]
    show_columns = [*list_columns, "review_note"]
    base_order = ("period", "desc")
    empty_text = "Показаний пока не передавалось."
    empty_filtered_text = "За выбранный период показаний нет."

    def heading(self, item) -> str:
        return f"Показания за {formats.month(item.period)}"

    def row_loads(self):
        return [joinedload(m.Reading.meter).joinedload(m.Meter.account)]

    def status_of(self, item, *computed):
        return histories.reading_status(item.status)


class ResidentMeterView(ResidentModelView):
    """Meters: the serial, the account, the kind and the verification date."""

    datamodel = SQLAInterface(m.Meter)
    route_base = "/cabinet/meters"
    list_title = "Счётчики"
    show_title = "Счётчик"
    row_template = "cabinet/history/_meter.html"
    label_columns = {**LABELS, "serial": "Заводской номер", "model": "Модель",
                     "zones": "Тарифность", "digit_capacity": "Разрядность",
                     "installed_on": "Установлен", "verification_due": "Срок поверки",
                     "active": "Действует"}
    choices_columns = {"zones": histories.METER_KINDS}
    year_column = None
    list_columns = ["serial", "account", "model", "zones", "verification_due", "active"]
    show_columns = ["serial", "account", "model", "zones", "digit_capacity", "installed_on",
                    "verification_due", "active"]
    base_order = ("serial", "asc")
    empty_text = "Счётчиков нет: начисления идут по нормативу."
    empty_filtered_text = "По этому лицевому счёту счётчиков нет."

    def heading(self, item) -> str:
        return f"Счётчик № {item.serial}"

    def status_of(self, item, *computed):
        return histories.meter_status(item, formats.local_today())


RESIDENT_VIEWS = [ResidentChargeView, ResidentInvoiceView, ResidentPaymentView,
                  ResidentReadingView, ResidentMeterView]
