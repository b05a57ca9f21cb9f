"""Relation fields of the back office's forms that search as you type.

A relation to a table that grows with the customers (app.services.lookup) is not a drop-down
of every related row: the form holds only the chosen row, and select2 asks the view's
``lookup/<add|edit>/<column>`` for at most twenty matches of what was typed. The endpoint
needs the same permission as the form it serves (can_add, can_edit on the view), answers
within the user's branch scope, and the submitted id is checked again (exists, in scope)
before the form is accepted.
"""
from __future__ import annotations

from typing import Callable

from flask import abort, jsonify, request, url_for
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_appbuilder.views import expose
from markupsafe import Markup, escape
from sqlalchemy.orm import MANYTOONE
from wtforms import Field
from wtforms.validators import StopValidation
from wtforms.widgets import html_params

from app.extensions import db
from app.services import lookup
from app.views.access import current_branch_scope

#: The view methods that answer the fields of the add and the edit form.
ENDPOINTS = {"add": "lookup_add", "edit": "lookup_edit"}


class LookupWidget:
    """A <select> holding only the chosen row; app/static/js/lookup.js makes it search."""

    def __call__(self, field: "LookupField", **kwargs) -> Markup:
        kwargs.setdefault("id", field.id)
        extra = kwargs.pop("class_", "") or kwargs.pop("class", "")
        kwargs["class"] = f"form-control portal-lookup {extra}".strip()
        params = html_params(name=field.name, data_lookup_url=field.url(),
                             data_placeholder=f"Начните вводить: {field.hint}",
                             data_required="1" if field.required else "0", **kwargs)
        options = ['<option value=""></option>']
        chosen = field.chosen()
        if chosen is not None:
            options.append(f'<option value="{escape(chosen[0])}" selected>'
                           f"{escape(chosen[1])}</option>")
        return Markup(f"<select {params}>{''.join(options)}</select>")


class LookupField(Field):
    """A many-to-one relation chosen by search: its data is the related row (as FAB's
    QuerySelectField gives it to ``populate_obj``), read by id within the branch scope."""

    widget = LookupWidget()

    def __init__(self, label=None, validators=None, *, model: type, url: Callable[[], str],
                 scope: Callable[[], int | None], required: bool = False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model
        self.url = url
        self.scope = scope
        self.required = required
        self.flags.required = required  # FAB marks the label with an asterisk
        self.hint = lookup.lookup_for(model).hint
        self.submitted: str | None = None

    def process_data(self, value):
        self.data = value

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self.submitted = (valuelist[0] or "").strip()
        self.data = (lookup.get(db.session, self.model, self.submitted, self.scope())
                     if self.submitted and self.submitted != "__None" else None)

    def pre_validate(self, form):
        if self.submitted and self.submitted != "__None" and self.data is None:
            raise StopValidation(f"{self.label.text}: такой записи нет или она вам "
                                 "недоступна. Выберите запись из списка.")
        if self.required and self.data is None:
            raise StopValidation(f"{self.label.text}: выберите запись из списка.")

    def chosen(self) -> tuple[str, str] | None:
        if self.data is None:
            return None
        return str(self.data.id), lookup.label(self.data)

    def _value(self) -> str:
        return "" if self.data is None else str(self.data.id)


def lookup_model(datamodel, column: str) -> type | None:
    """The related table of a many-to-one ``column`` when it is searched as you type."""
    attribute = getattr(datamodel.obj, column, None)
    prop = getattr(attribute, "property", None)
    if getattr(prop, "direction", None) is not MANYTOONE:
        return None
    related = prop.mapper.class_
    return related if lookup.lookup_for(related) is not None else None


def relation_required(datamodel, column: str) -> bool:
    """Whether the row cannot be saved without ``column`` (its foreign key is NOT NULL)."""
    prop = getattr(datamodel.obj, column).property
    return not all(c.nullable for c in prop.local_columns)


def lookup_field(view, column: str, form: str) -> LookupField:
    """The search field of ``column`` in the view's ``form`` ("add" or "edit")."""
    endpoint = f"{type(view).__name__}.{ENDPOINTS[form]}"
    required = relation_required(view.datamodel, column)
    return LookupField(
        str(view.label_columns.get(column, column)),
        model=lookup_model(view.datamodel, column),
        url=lambda: url_for(endpoint, column=column),
        scope=view.lookup_branch_scope,
        required=required,
        description=view.description_columns.get(column, ""),
    )


class LookupViewMixin:
    """The JSON endpoints of a view's search fields: ``?q=`` gives at most twenty
    {"id", "text"} of the related table, for the add or the edit form's permission."""

    #: Relation columns of the add and edit forms searched as you type, by form.
    lookup_columns: dict[str, set[str]] = {}

    @expose("/lookup/add/<column>")
    @has_access
    @permission_name("add")
    def lookup_add(self, column: str):
        return self._lookup("add", column, request.args.get("q", ""))

    @expose("/lookup/edit/<column>")
    @has_access
    @permission_name("edit")
    def lookup_edit(self, column: str):
        return self._lookup("edit", column, request.args.get("q", ""))

    def lookup_branch_scope(self) -> int | None:
        """The branch the user's searches and choices are limited to (None: every branch);
        a view with a scope rule of its own says so here."""
        return current_branch_scope()

    def _lookup(self, form: str, column: str, text: str):
        if column not in self.lookup_columns.get(form, ()):
            abort(404)
        found = lookup.search(db.session, lookup_model(self.datamodel, column), text,
                              self.lookup_branch_scope())
        response = jsonify(results=found)
        response.headers["Cache-Control"] = "private, no-store"
        return response
