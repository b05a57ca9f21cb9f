"""The base of every back-office view: branch scoping, Russian display of values, .xlsx export.

FAB applies ``base_filters`` to list, show, edit and delete, not to create nor to the choices
of relation drop-downs: a branch operator's adds and edits are checked in ``pre_add`` and
``pre_update``, and every drop-down over a branch-owned table is limited to the operator's
branch. Status-like columns show their Russian labels and are edited through a select.
A relation to a table that grows with the customers (accounts, meters, users...) is never a
drop-down of every row: a search-as-you-type field in forms and a text filter on the related
row's natural key in searches (app.views.related, app.services.lookup).
"""
from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import quote

from flask import g, request, send_file
from flask_appbuilder import ModelView
from flask_appbuilder.baseviews import BaseCRUDView
from flask_appbuilder.fieldwidgets import (
    BS3TextFieldWidget,
    DatePickerWidget,
    DateTimePickerWidget,
    Select2Widget,
)
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual, FilterNotEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_appbuilder.urltools import get_filter_args, get_order_args
from flask_appbuilder.views import expose
from flask_appbuilder.widgets import ListWidget
from sqlalchemy import func, inspect
from sqlalchemy.orm import MANYTOONE, joinedload, selectinload
from wtforms import (
    BooleanField,
    DateField,
    DateTimeField,
    SelectField,
    StringField,
    ValidationError,
)
from wtforms.validators import InputRequired, Optional

from app.extensions import db
from app.services import audit, export
from app.services.scoping import branch_condition, has_branch_rule, in_branch
from app.views import formats
from app.views.access import current_branch_scope
from app.views.filters import TypedFilterConverter, relation_filters
from app.views.related import LookupViewMixin, lookup_field, lookup_model

#: Permission sets of the back-office views. Every list can be exported (the role policy
#: decides who may); history-bearing rows are kept (no delete), ledger rows are only appended.
CAN_READ = ["can_list", "can_show", "can_export_xlsx"]
CAN_APPEND = [*CAN_READ, "can_add"]
CAN_KEEP = [*CAN_APPEND, "can_edit"]
CAN_ALL = [*CAN_KEEP, "can_delete"]

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_BATCH = 500
#: Column kind -> (Excel number format, column width).
XLSX_FORMATS = {
    "month": (export.MONTH_FORMAT, 12),
    "date": (export.DATE_FORMAT, 12),
    "timestamp": (export.DATETIME_FORMAT, 18),
}


class OutOfScope(Exception):
    """A branch operator tried to place a row outside their branch."""


class BranchScopeFilter(BaseFilter):
    """Limit rows to the signed-in user's branch when the user's role is branch-scoped."""

    name = "Филиал сотрудника"
    arg_name = "branch_scope"

    def apply(self, query, value):
        branch_id = current_branch_scope()
        if branch_id is None:
            return query
        return query.filter(branch_condition(self.model, branch_id))


def choice_field(label: str, labels: Mapping[Any, str], *, required: bool = True,
                 default: Any = None, description: str = "",
                 coerce: Callable[[Any], Any] = str) -> SelectField:
    """A select of the allowed values of a column, shown by their Russian labels."""
    choices = [(value, text) for value, text in labels.items()]
    if not required:
        choices.insert(0, ("", "—"))
        coerce = _blank_is_none(coerce)
    return SelectField(
        label,
        choices=choices,
        coerce=coerce,
        default=default,
        description=description,
        validators=[InputRequired()] if required else [Optional()],
        widget=Select2Widget(),
    )


def _blank_is_none(coerce: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value in ("", None) else coerce(value)


def first_day_of_month(form, field) -> None:
    """Billing periods are months, stored as their first day."""
    if field.data and field.data.day != 1:
        raise ValidationError("Период указывается первым числом месяца, например 2026-10-01.")


def _label_of(labels: Mapping[Any, str]) -> Callable[[Any], str]:
    return lambda value: "" if value is None else labels.get(value, str(value))


class OnceFilterConverter(TypedFilterConverter):
    """FAB's filter converter, converting each column once per interface: FAB builds the
    filters of every column of the model again each time it makes a Filters, twice in every
    list request. The filters are stateless; each caller gets its own list of them."""

    def convert(self, col_name):
        converted = self.datamodel.converted_filters
        if col_name not in converted:
            converted[col_name] = super().convert(col_name)
        filters = converted[col_name]
        return None if filters is None else list(filters)


class PagedInterface(SQLAInterface):
    """FAB's interface that reads a list page and the number of rows of all pages in one
    statement (``count(*) OVER ()``): FAB counts in a statement of its own before every list
    page and API list, a second round trip for a number the page's rows can carry."""

    filter_converter_class = OnceFilterConverter

    def __init__(self, obj, session=None):
        super().__init__(obj, session)
        self.converted_filters: dict[str, list | None] = {}

    def query(self, filters=None, order_column="", order_direction="", page=None,
              page_size=None, select_columns=None, outer_default_load=False):
        if select_columns and self.exists_col_to_many(select_columns):
            return super().query(filters, order_column, order_direction, page, page_size,
                                 select_columns, outer_default_load)
        if select_columns and all(c in self.list_columns for c in select_columns):
            # The API's rows are a table's own columns: load them whole. FAB would build a
            # load_only() option per column, more CPU than the unlisted columns cost to read.
            select_columns = None
        base = self._base_query()
        rows = self.apply_all(base, filters, order_column, order_direction, page, page_size,
                              select_columns, outer_default_load) \
            .add_columns(func.count().over().label("all_rows")).all()
        if rows:
            return rows[0][-1], [self._item(row) for row in rows]
        if page:  # past the last page: the rows before it still count
            return self.query_count(base, filters, select_columns), []
        return 0, []

    def _base_query(self):
        return self.session.query(self.obj)

    def _item(self, row):
        return row[0]


class RowsInterface(PagedInterface):
    """The API's interface: a resource's rows are its table's own columns, read as plain rows
    (``row.id``, ``row.amount``) rather than as ORM objects, which cost more to build than the
    query to run. Filters, order and pages are FAB's, as for the objects. ``get`` still gives
    the object (a bill's PDF needs its account); ``get_row`` gives the row. ``computed`` are
    labelled expressions read in the same statement (an account's balance)."""

    def __init__(self, obj, columns: list[str], session=None, computed: list | None = None):
        super().__init__(obj, session)
        self.row_columns = [getattr(obj, column) for column in columns] + (computed or [])

    def _base_query(self):
        return self.session.query(*self.row_columns)

    def _item(self, row):
        return row

    def get_row(self, pk: int, filters):
        """The row with the primary key ``pk`` within ``filters``, or None."""
        found = filters.copy()
        found.add_filter(self.get_pk_name(), self.FilterEqual, pk)
        return self.apply_all(self._base_query(), found).one_or_none()


class EagerInterface(PagedInterface):
    """FAB's interface that loads the relations a list shows with its rows: no query per row."""

    eager_relations: tuple[str, ...] = ()

    def apply_all(self, query, *args, **kwargs):
        return super().apply_all(query, *args, **kwargs).options(*self.load_options())

    def load_options(self) -> list:
        options = []
        for name in self.eager_relations:
            attribute = getattr(self.obj, name)
            to_many = self.is_relation_many_to_many(name) or self.is_relation_one_to_many(name)
            options.append(selectinload(attribute) if to_many else joinedload(attribute))
        return options


class PortalListWidget(ListWidget):
    """FAB's list with an «Экспорт в Excel» button for those allowed to export."""

    template = "portal/widgets/list.html"


class PortalViewMixin:
    """Scoping, Russian display and the .xlsx export, for ModelView and FAB's user view alike.

    ``choices_columns`` maps a status-like column to its {value: Russian label}; it drives the
    list and show display, the add/edit select and the search select. Numbers, dates, billing
    periods (``month_columns``) and booleans are formatted from the column types."""

    choices_columns: dict[str, Mapping[Any, str]] = {}
    choices_coerce: dict[str, Callable[[Any], Any]] = {}
    month_columns: tuple[str, ...] = ("period",)
    list_widget = PortalListWidget
    page_size = 25

    def __init__(self, **kwargs):
        self.datamodel = EagerInterface(self.datamodel.obj)
        super().__init__(**kwargs)

    def _init_properties(self):
        super()._init_properties()
        self.datamodel.eager_relations = tuple(
            c for c in self.list_columns if self.datamodel.is_relation(c)
        )
        self.validators_columns = {k: list(v) for k, v in self.validators_columns.items()}
        for column in self.month_columns:
            if column in {*self.add_columns, *self.edit_columns}:
                self.validators_columns.setdefault(column, []).append(first_day_of_month)
        self.declared_formatters = dict(self.formatters_columns)
        self.formatters_columns = {**self._type_formatters(), **self.formatters_columns}
        self.lookup_columns = self._lookup_columns()
        self.add_form_extra_fields = self._form_fields(self.add_form_extra_fields,
                                                       self.add_columns, "add")
        self.edit_form_extra_fields = self._form_fields(self.edit_form_extra_fields,
                                                        self.edit_columns, "edit")
        self.search_form_extra_fields = self._form_fields(
            self.search_form_extra_fields, self.search_columns, "search")
        self.add_form_query_rel_fields = self._scoped_relations(
            self.add_form_query_rel_fields, self.add_columns)
        self.edit_form_query_rel_fields = self._scoped_relations(
            self.edit_form_query_rel_fields, self.edit_columns)
        self.search_form_query_rel_fields = self._scoped_relations(
            self.search_form_query_rel_fields, self.search_columns)
        self._narrow_choice_filters()
        self._relations_by_key()
        self._lookup_templates()

    def _type_formatters(self) -> dict[str, Callable[[Any], Any]]:
        shown = dict.fromkeys([*self.list_columns, *self.show_columns])
        return {column: self._formatter(column) for column in shown}

    def _kind(self, column: str) -> str:
        """What a column holds, which decides how it is shown and exported."""
        model = self.datamodel
        if column in self.choices_columns:
            return "choice"
        if column in self.month_columns and model.is_date(column):
            return "month"
        for kind, test in (("number", model.is_numeric), ("timestamp", model.is_datetime),
                           ("date", model.is_date), ("flag", model.is_boolean),
                           ("relation", model.is_relation)):
            if test(column):
                return kind
        return "text"

    def _places(self, column: str) -> int:
        return self.datamodel.list_columns[column].type.scale or 0

    def _formatter(self, column: str) -> Callable[[Any], Any]:
        kind = self._kind(column)
        if kind == "choice":
            return _label_of(self.choices_columns[column])
        if kind == "number":
            places = self._places(column)
            return lambda value: formats.number(value, places)
        return {"month": formats.month, "timestamp": formats.timestamp, "date": formats.date,
                "flag": formats.yes_no}.get(kind, formats.text)

    def _lookup_columns(self) -> dict[str, set[str]]:
        """The relation columns of each form that are searched as you type: in the views
        with the lookup endpoints, those to a table that grows with the customers."""
        if not isinstance(self, LookupViewMixin):
            return {}
        forms = {"add": self.add_columns, "edit": self.edit_columns,
                 "search": self.search_columns}
        return {form: {c for c in columns if lookup_model(self.datamodel, c) is not None}
                for form, columns in forms.items()}

    def _form_fields(self, extra: dict | None, columns: list[str], form: str) -> dict:
        """Give a form a select for every status-like column and a plain checkbox for every
        flag (FAB marks a NOT NULL flag required, so it could never be left unticked); give
        the search form empty date pickers (FAB pre-fills them with the column's default).
        A relation to a large table is a search field in add and edit, and a text box for
        its natural key in the search form (never a list of every related row)."""
        fields = dict(extra or {})
        search = form == "search"
        for column in columns:
            if column in fields:
                continue
            if column in self.lookup_columns.get(form, ()):
                fields[column] = (
                    StringField(str(self.label_columns.get(column, column)),
                                validators=[Optional()], widget=BS3TextFieldWidget(),
                                render_kw={"data-filter-default": "1"})
                    if search else lookup_field(self, column, form))
                continue
            label = str(self.label_columns.get(column, column))
            description = self.description_columns.get(column, "")
            default = None if search else self._default(column)
            if column in self.choices_columns:
                fields[column] = choice_field(
                    label, self.choices_columns[column], default=default,
                    required=not search and not self.datamodel.is_nullable(column),
                    description=description, coerce=self.choices_coerce.get(column, str))
            elif not search and self.datamodel.is_boolean(column):
                fields[column] = BooleanField(label, description=description,
                                              default=bool(default))
            elif search and self.datamodel.is_datetime(column):
                fields[column] = DateTimeField(label, validators=[Optional()],
                                               widget=DateTimePickerWidget())
            elif search and self.datamodel.is_date(column):
                fields[column] = DateField(label, validators=[Optional()],
                                           widget=DatePickerWidget())
        return fields

    def _narrow_choice_filters(self) -> None:
        """A select offers whole values: search a status-like column by "equal to" (filter
        index 0) and "not equal to" only, not by "starts with" and the like."""
        for column in self.choices_columns:
            for table in (self._filters.get_search_filters(), self._filters._all_filters):
                if column in table:
                    table[column] = [f for f in table[column]
                                     if type(f) in (FilterEqual, FilterNotEqual)]

    def _relations_by_key(self) -> None:
        """Search a relation to a large table by the related row's natural key (index 1 on:
        "номер равен", "начинается с"...), keeping FAB's filter by id at index 0 for links."""
        for column in self.lookup_columns.get("search", ()):
            made = relation_filters(self.datamodel.obj, column)
            if made is None:
                continue
            for table in (self._filters.get_search_filters(), self._filters._all_filters):
                table[column] = [f(column, self.datamodel) for f in made]

    def _lookup_templates(self) -> None:
        """FAB's add, edit and list pages with the script of the search fields."""
        if not isinstance(self, LookupViewMixin):
            return
        for kind in ("add", "edit", "list"):
            attribute = f"{kind}_template"
            if getattr(self, attribute) == getattr(BaseCRUDView, attribute):
                setattr(self, attribute, f"portal/lookup/{kind}.html")

    def _default(self, column: str) -> Any:
        if column not in self.datamodel.list_columns:
            return None
        default = self.datamodel.get_col_default(column)
        return default() if callable(default) else default

    def _scoped_relations(self, rel_fields: dict | None, columns: list[str]) -> dict:
        """Limit every relation drop-down over a branch-owned table to the user's branch."""
        fields = dict(rel_fields or {})
        for column in columns:
            if column in fields or not self.datamodel.is_relation(column):
                continue
            if has_branch_rule(self.datamodel.get_related_model(column)):
                fields[column] = [["id", BranchScopeFilter, None]]
        return fields

    # Checks on create and update -------------------------------------------------------------

    def clean_row(self, item) -> None:
        """Check (and tidy) a row before it is saved; raise with a message to refuse it."""

    def _check_scope(self, item) -> None:
        branch_id = current_branch_scope()
        if branch_id is not None and not in_branch(db.session, item, branch_id):
            raise OutOfScope("Запись относится к другому филиалу: сохранить её нельзя.")

    def _checked(self, item) -> None:
        """Run the checks; on refusal, drop the half-applied form so that nothing is saved."""
        try:
            sync_foreign_keys(item)
            self._check_scope(item)
            self.clean_row(item)
        except Exception:
            db.session.rollback()
            raise

    def pre_add(self, item):
        self._checked(item)
        super().pre_add(item)

    def pre_update(self, item):
        self._checked(item)
        super().pre_update(item)

    # Export ----------------------------------------------------------------------------------

    @expose("/export/xlsx")
    @has_access
    @permission_name("export_xlsx")
    def export_xlsx(self):
        """The list as .xlsx, with the list's filters, order and branch scope."""
        get_filter_args(self._filters)
        filters = self._filters.get_joined_filters(self._base_filters)
        order_column, direction = get_order_args().get(
            self.__class__.__name__, self.base_order or ("", ""))
        query = self.datamodel.apply_all(
            self.datamodel.session.query(self.datamodel.obj), filters, order_column, direction
        ).yield_per(EXPORT_BATCH)
        title = str(self.list_title)
        stream = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        count = export.write_xlsx(
            stream, title, [self._xlsx_column(c) for c in self.list_columns],
            ([self._xlsx_value(c, row) for c in self.list_columns] for row in query),
            to_local=formats.local_time,
        )
        stream.seek(0)
        audit.record(db.session, "export.xlsx", actor_id=g.user.id,
                     object_type=self.__class__.__name__, ip=request.remote_addr,
                     details={"rows": count, "query": request.query_string.decode()})
        today = _today().isoformat()
        response = send_file(stream, mimetype=XLSX_MIMETYPE, as_attachment=True,
                             download_name=f"export_{today}.xlsx")
        response.headers["Content-Disposition"] = content_disposition(
            f"{title}_{today}.xlsx", fallback=f"export_{today}.xlsx")
        return response

    def _xlsx_column(self, column: str) -> export.Column:
        label = str(self.label_columns.get(column, column))
        kind = self._kind(column)
        if kind == "number":
            places = self._places(column)
            return export.Column(label, "#,##0" + ("." + "0" * places if places else ""), 16)
        if kind in XLSX_FORMATS:
            return export.Column(label, *XLSX_FORMATS[kind])
        return export.Column(label, width=24 if kind == "relation" else 18)

    def _xlsx_value(self, column: str, row) -> Any:
        value = self.datamodel._get_attr_value(row, column)
        if column in self.declared_formatters:
            return str(self.declared_formatters[column](value))
        if column in self.choices_columns:
            return _label_of(self.choices_columns[column])(value)
        if isinstance(value, bool):
            return formats.yes_no(value)
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        if value is None or isinstance(value, (int, float, str, dt.date, Decimal)):
            return value
        return str(value)


def sync_foreign_keys(item) -> None:
    """Copy the keys of the related rows a form has just set into the row's own foreign-key
    columns: SQLAlchemy does it only at flush, and the checks read the columns."""
    mapper = inspect(type(item))
    for relation in mapper.relationships:
        if relation.direction is not MANYTOONE or relation.key not in vars(item):
            continue
        related = vars(item)[relation.key]
        for local, remote in relation.local_remote_pairs:
            value = None
            if related is not None:
                value = getattr(related, inspect(type(related)).get_property_by_column(remote).key)
            setattr(item, mapper.get_property_by_column(local).key, value)


def content_disposition(filename: str, fallback: str) -> str:
    """An attachment header: an ASCII name for old clients, the real one per RFC 5987."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _today() -> dt.date:
    return formats.local_time(dt.datetime.now(dt.timezone.utc)).date()


class PortalModelView(LookupViewMixin, PortalViewMixin, ModelView):
    """A back-office list/show/add/edit view whose rows are scoped to the user's branch."""

    base_filters = [["id", BranchScopeFilter, lambda: None]]
    base_permissions = CAN_ALL


class DirectoryModelView(PortalModelView):
    """Reference data shared by every branch (branches, tariffs): not branch-scoped."""

    base_filters = []

    def _check_scope(self, item) -> None:
        return None


def current_user_id() -> int | None:
    user = getattr(g, "user", None)
    return getattr(user, "id", None)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)

