"""Input refused before a view reads it, in Russian and with nothing changed: what no form asks
for, and the malformed arguments of Flask-AppBuilder's generic views, which FAB hands unchecked
to ``int()`` or to SQL (a server error, or a PostgreSQL error where SQLite shrugs).

- Text that is not text, wherever the portal reads it (the path, the query string, a form's
  fields and file names, a JSON body, the cookies and the headers of ``READ_HEADERS``): a NUL
  byte, which PostgreSQL cannot store in a text column; bytes that are not UTF-8, which
  Werkzeug keeps as ``%FF`` in a form, turns into U+FFFD in a multipart one and cannot parse
  at all in a Cookie header (the session is read before any hook runs: ``TextOnly`` looks at
  the raw request first); a lone surrogate from a JSON escape, which psycopg cannot encode;
  JSON nested past what Python reads; and, behind a proxy (``PROXY_COUNT``), a client address
  that is not one. 400 (JSON under /api/), before any other hook reads the request.
- A model view's id that is not one (``/edit/abc``, ``/show/99999999999999999999``) or an
  action it does not have: 404, like any missing row. The administrator's password form for
  a user (``/resetpassword/form?pk=``) without an existing user: 404. So are a chart's
  grouping that it does not have (``/userstatschartview/chart/x``, FAB's ``int()``) and FAB's
  file-column download (``/<view>/download/<name>``), which the portal has no folder for.
- A list's page, page size or order that is not one, or a filter value its column cannot be
  compared with (an id past the column, a number past a small integer, a yes/no or a sum
  that is not one): the list opens without it, and a warning names the filter.
- A relation that FAB's add and edit forms take from the URL (``?_flt_0_account=7``, the
  "add" link of a related list) that is not one id: 400.

``fits(column_type, value)`` is the one rule of "a number this column can hold", for the URL,
the filters and the forms' ``FitsColumn`` validator.
"""
from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from urllib.parse import unquote_to_bytes, urlencode

from flask import current_app, flash, jsonify, redirect, render_template, request
from flask_appbuilder.baseviews import BaseCRUDView, BaseModelView
from flask_appbuilder.charts.views import GroupByChartView
from flask_appbuilder.models.filters import FilterRelation
from flask_appbuilder.security.views import ResetPasswordView
from sqlalchemy import BigInteger, Boolean, Float, Integer, Numeric, SmallInteger, inspect
from wtforms.validators import StopValidation

from app.views import filters
from app.views.errors import with_user

BAD_REQUEST = ("Неверный запрос",
               "Адрес страницы или данные формы повреждены. Вернитесь назад и попробуйте ещё "
               "раз.")
NOT_FOUND = ("Страница не найдена",
             "Такой страницы нет, или запись относится к другому филиалу.")
BROKEN_TEXT = ("Неверный запрос",
               "В адресе, данных формы или заголовках запроса есть недопустимые символы "
               "(нулевой байт или текст не в кодировке UTF-8). Вернитесь назад и введите "
               "данные заново.")
BROKEN_TEXT_API = "Неверный запрос: нулевой байт или текст не в кодировке UTF-8."
#: The request headers the portal and its libraries read (the sign-in's device, the proxy's
#: address and scheme, links back, tokens, CSRF, the language), as WSGI names them.
READ_HEADERS = ("HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_X_FORWARDED_FOR",
                "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
                "HTTP_X_FORWARDED_PREFIX", "HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_ORIGIN",
                "HTTP_X_CSRFTOKEN", "HTTP_X_CSRF_TOKEN", "HTTP_ACCEPT_LANGUAGE", "HTTP_HOST",
                "CONTENT_TYPE")
#: Where ``TextOnly`` notes a request to refuse.
BROKEN_MARK = "portal.broken_text"
#: The longest address the tables keep (an IPv6 address in full, ``String(45)``).
MAX_ADDRESS = 45
#: The largest value of each integer column type (PostgreSQL's int2, int4, int8).
INTEGER_LIMITS = ((SmallInteger, 2**15 - 1), (BigInteger, 2**63 - 1), (Integer, 2**31 - 1))
#: FAB's list arguments (flask_appbuilder.urltools), searched anywhere in the name as FAB does.
PAGE_ARG, SIZE_ARG = re.compile("page_(.*)"), re.compile("psize_(.*)")
ORDER_ARG, FILTER_ARG = re.compile("_oc_(.*)"), re.compile(r"_flt_(\d)_(.*)")
MAX_PAGE, MAX_PAGE_SIZE = 1_000_000, 100


def init_app(app) -> None:
    app.wsgi_app = TextOnly(app.wsgi_app)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_broken_text)
    app.before_request(refuse_malformed)


def refuse_malformed():
    view = _views().get(request.blueprint)
    if isinstance(view, ResetPasswordView) and not _existing_user(request.args.get("pk", "")):
        return _refusal(404, NOT_FOUND)
    if not isinstance(view, BaseModelView):
        return None
    refusal = _refused_arguments(view)
    if refusal:
        return _refusal(*refusal)
    method = (request.endpoint or "").rsplit(".", 1)[-1]
    if method in ("add", "edit"):
        return None if _prefills_valid(view) else _refusal(400, BAD_REQUEST)
    if request.method == "GET":
        return _without_unusable_list_args(view)
    return None


# Text that is not text ------------------------------------------------------------------------


def is_text(data: bytes) -> bool:
    """Whether raw bytes are UTF-8 text without a NUL byte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def storable(text: str) -> bool:
    """Whether a database can take the text: no NUL byte, no lone surrogate."""
    return "\x00" not in text and is_text(text.encode("utf-8", "surrogatepass"))


def _raw(value: str) -> bytes:
    """The bytes behind a WSGI string (latin-1 by PEP 3333; a test client may pass text)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


class TextOnly:
    """WSGI middleware, outside everything Flask does: notes a request whose path, query
    string or read headers are not text for ``refuse_broken_text``, and drops a Cookie header
    that is not, which Werkzeug would fail to parse when it opens the session."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        raw = [_raw(environ.get("PATH_INFO", "")),
               unquote_to_bytes(_raw(environ.get("QUERY_STRING", "")))]
        raw += [_raw(environ[name]) for name in READ_HEADERS if name in environ]
        if not all(is_text(data) for data in raw):
            environ[BROKEN_MARK] = True
            if not is_text(_raw(environ.get("HTTP_COOKIE", ""))):
                del environ["HTTP_COOKIE"]
        return self.wsgi_app(environ, start_response)


def refuse_broken_text():
    """The first hook of every request: refuse what ``TextOnly`` noted, a body whose text is
    not text, and an address that is not one."""
    if (request.environ.get(BROKEN_MARK) or not _address_valid(request.remote_addr)
            or _broken_body()):
        with_user()  # the hook runs before FAB's, which sets it
        return _refusal(400, BROKEN_TEXT, api_message=BROKEN_TEXT_API)
    return None


def _address_valid(address: str | None) -> bool:
    """The client's address, from the server or a trusted proxy's X-Forwarded-For, is one
    the audit journal can keep (none at all, as over a Unix socket, is not refused)."""
    if not address:
        return True
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return len(address) <= MAX_ADDRESS


def _broken_body() -> bool:
    """Form fields and file names with a NUL byte or not UTF-8; JSON that is not UTF-8, with
    a NUL byte or a lone surrogate in any key or string, or nested too deep to read. An
    urlencoded body is looked at raw first (Werkzeug keeps its broken bytes as ``%FF`` and
    reads the form from the cached body afterwards)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        if not is_text(unquote_to_bytes(request.get_data(cache=True))):
            return True
    elif request.is_json:
        if not is_text(request.get_data(cache=True)):
            return True
        try:
            payload = request.get_json(silent=True)  # cached for the view
        except RecursionError:
            return True
        if not all(storable(text) for text in json_strings(payload)):
            return True
    replaced = request.mimetype == "multipart/form-data"  # Werkzeug's U+FFFD for bad bytes
    for name, value in request.form.items(multi=True):
        if not storable(name) or not storable(value) or replaced and "\ufffd" in value:
            return True
    return any(not storable(upload.filename or "")
               for _name, upload in request.files.items(multi=True))


def json_strings(payload):
    """Every key and string of a JSON document, without recursion."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# Numbers a column can hold -------------------------------------------------------------------


def integer_limit(column_type) -> int | None:
    for kind, limit in INTEGER_LIMITS:
        if isinstance(column_type, kind):
            return limit
    return None


def fits(column_type, value) -> str | None:
    """Why ``value`` cannot be stored in (or compared with) a column of this type, or None."""
    column_type = getattr(column_type, "impl_instance", column_type)  # app.models.ExactMoney
    limit = integer_limit(column_type)
    if limit is not None:
        number = int(value)
        if -limit - 1 <= number <= limit:
            return None
        return f"Число должно быть от {_digits(-limit - 1)} до {_digits(limit)}."
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        number = Decimal(value)
        if not number.is_finite():
            return "Введите число."
        precision, scale = column_type.precision, column_type.scale or 0
        if scale and -number.as_tuple().exponent > scale:
            return f"Не больше {scale} знаков после запятой."
        if precision and abs(number) >= 10 ** (precision - scale):
            return f"Число должно быть меньше {_digits(10 ** (precision - scale))} по модулю."
    return None


class FitsColumn:
    """A form validator: the number entered fits the model's column (a finite number, within
    the integer type, with no more digits than the decimal column keeps). Stops the checks
    after it, so that NumberRange never meets a NaN."""

    def __init__(self, column):
        self.column_type = column.type

    def __call__(self, form, field):
        if field.data is not None:
            problem = fits(self.column_type, field.data)
            if problem:
                raise StopValidation(problem)


def _digits(number: int) -> str:
    return f"{number:,}".replace(",", "\u00a0").replace("-", "−")


# Ids, actions and list arguments of FAB's views ---------------------------------------------


def valid_id(model, value: str) -> bool:
    """Whether ``value`` can be the primary key of a row of ``model``: for an integer key, a
    number the column holds (anything else is a database error, not a missing row)."""
    keys = inspect(model).primary_key
    if len(keys) != 1 or integer_limit(keys[0].type) is None:
        return True
    return (value.isascii() and value.isdigit() and len(value) <= 19
            and int(value) <= integer_limit(keys[0].type))


def _existing_user(pk: str) -> bool:
    sm = current_app.appbuilder.sm
    return valid_id(sm.user_model, pk) and sm.get_user_by_id(int(pk)) is not None


def _single_action_on_a_row(view: BaseModelView, name: str | None, pk) -> bool:
    """Whether ``/action/<name>/<pk>`` names an action of one row, on a row the view shows:
    FAB hands the row to the action as is, even to one that takes a list (copying roles) or
    when there is no such row."""
    action = getattr(view, "actions", {}).get(name)
    if action is None or not action.single:
        return False
    return view.datamodel.get(pk, view._base_filters) is not None


def _refused_arguments(view: BaseModelView) -> tuple[int, tuple[str, str]] | None:
    args = request.view_args or {}
    method = (request.endpoint or "").rsplit(".", 1)[-1]
    model = view.datamodel.obj
    if "pk" in args and not valid_id(model, str(args["pk"])):
        return 404, NOT_FOUND
    if isinstance(view, GroupByChartView) and "group_by" in args and not (
            str(args["group_by"]).isascii() and str(args["group_by"]).isdigit()
            and int(args["group_by"]) < len(view.definitions)):
        return 404, NOT_FOUND
    if method == "download" and "filename" in args and not current_app.config.get(
            "UPLOAD_FOLDER"):
        return 404, NOT_FOUND
    if method == "action" and not _single_action_on_a_row(view, args.get("name"), args["pk"]):
        return 404, NOT_FOUND
    if method == "action_post" and (
            request.form.get("action") not in getattr(view, "actions", {})
            or not all(valid_id(model, pk) for pk in request.form.getlist("rowid"))):
        return 400, BAD_REQUEST
    return None


def _prefills_valid(view: BaseModelView) -> bool:
    """Whether every relation FAB's add or edit form would take from the URL is one id (FAB
    reads every column's filters there, not only the search's, and looks the row up as is;
    the form's select still checks that it is one it offers)."""
    by_column = view._filters._all_filters
    for arg, values in request.args.lists():
        match = FILTER_ARG.search(arg)
        if match is None or match.group(2) not in by_column:
            continue
        column, index = match.group(2), int(match.group(1))
        if index >= len(by_column[column]):
            return False
        if not isinstance(by_column[column][index], FilterRelation):
            continue
        related = view.datamodel.get_related_model(column)
        if len(values) != 1 or not valid_id(related, values[0]):
            return False
    return True


def _without_unusable_list_args(view: BaseModelView):
    """Open the list without the arguments FAB could not use, naming each dropped filter."""
    lists = {type(v).__name__: v for v in _views().values() if isinstance(v, BaseCRUDView)}
    kept, dropped = [], []
    for arg, value in request.args.items(multi=True):
        problem = _list_arg_problem(view, lists, arg, value)
        if problem is None:
            kept.append((arg, value))
        elif problem:
            dropped.append(problem)
    if len(kept) == sum(1 for _ in request.args.items(multi=True)):
        return None
    for label in dict.fromkeys(dropped):
        flash(f"Фильтр «{label}» не применён: такого значения в нём быть не может.", "warning")
    return redirect(request.path + (f"?{urlencode(kept)}" if kept else ""))


def _list_arg_problem(view: BaseModelView, lists: dict, arg: str, value: str) -> str | None:
    """None when FAB can use the argument; otherwise "" (drop it quietly) or the label of the
    filter to name."""
    if PAGE_ARG.search(arg) or SIZE_ARG.search(arg):
        limit = MAX_PAGE_SIZE if SIZE_ARG.search(arg) else MAX_PAGE
        ok = value.isascii() and value.isdigit() and int(value) <= limit
        return None if ok else ""
    order = ORDER_ARG.search(arg)
    if order and order.group(1) in lists:
        return None if value in lists[order.group(1)].order_columns else ""
    flt = FILTER_ARG.search(arg)
    if flt is None:
        return None
    column, index = flt.group(2), int(flt.group(1))
    offered = view._filters.get_search_filters().get(column)
    if offered is None:
        return None
    label = str(view.label_columns.get(column, column))
    if index >= len(offered):
        return label
    return None if _comparable(view, column, offered[index], value) else label


def _comparable(view: BaseModelView, column: str, flt, value: str) -> bool:
    """Whether FAB's filter can compare the column with the text: it reads an integer (text
    that is none compares with NULL) but passes a yes/no other than its "y" to the database
    as text, which PostgreSQL refuses to compare; a decimal must be one (app.views.filters)."""
    datamodel = view.datamodel
    if isinstance(flt, FilterRelation):
        return valid_id(datamodel.get_related_model(column), value.strip())
    column_type = getattr(datamodel.list_columns.get(column), "type", None)
    column_type = getattr(column_type, "impl_instance", column_type)  # app.models.ExactMoney
    if integer_limit(column_type) is not None:
        try:
            return fits(column_type, int(value)) is None
        except ValueError:
            return True
    if isinstance(column_type, Boolean):
        return value == "y"
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        return filters.number(value) is not None
    return True


def _views() -> dict:
    """Every FAB view by blueprint name, looked up once."""
    views = current_app.extensions.get("portal_views_by_blueprint")
    if views is None:
        views = {v.blueprint.name: v for v in current_app.appbuilder.baseviews
                 if getattr(v, "blueprint", None) is not None}
        current_app.extensions["portal_views_by_blueprint"] = views
    return views


def _refusal(code: int, page: tuple[str, str], api_message: str | None = None):
    title, text = page
    if request.path.startswith("/api/"):
        return jsonify(message=api_message or title), code
    appbuilder = current_app.appbuilder
    return render_template("portal/error.html", code=code, title=title, text=text,
                           appbuilder=appbuilder, base_template=appbuilder.base_template), code
