"""Fuzz every form and query string of the portal: no answer is a server error, a refused
request changes no row, a route no role may use lets nobody in, and every other route lets
its audience in at least once (so the run is not all sign-in pages).

The targets come from ``app.url_map``, not from a list: every route that accepts POST, and
every GET route whose view reads its query string (FAB's list filters, pages and order, the
portal's periods and amounts). Each is called as its audience: the first of anonymous, a
resident with a bound account, an organization user, a branch operator, finance or an
administrator whose role may call it. Field names come from the forms the audience's pages
show (a short crawl from its start pages, following links), from the WTForms classes and FAB
forms of the view, and from the names the view reads off ``request``. Hypothesis fills them
with plausible and hostile values (empty, huge, unicode, NUL bytes, numbers past any column,
wrong dates, other users' ids, decimals with many digits, files) with a fixed seed; each
request is either all usual values, usual values with one hostile, or anything at all.
Besides, each target gets a request whose text is not text (bytes that are not UTF-8 or a NUL,
raw in the query string, an urlencoded or a multipart body: one kind per target, in turn),
which must be refused with app/views/guards.py's 400, and a body past MAX_CONTENT_LENGTH,
which must get the 413 page (the signed-in user's, with their name); neither changes a row.
The suite runs this file on PostgreSQL too, which refuses what SQLite stores (a NUL byte).
Routes that destroy what others need (deletes, FAB's role editor, the consent withdrawal)
run last, and the roles and permissions are put back afterwards.

The JSON API (/api/v1) is fuzzed by tests/test_api_schema.py with schemathesis.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import io
import math
import os
import re
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pytest
from flask_appbuilder import Model
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, literal, select, union_all
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, RequestRedirect
from wtforms import FileField, Form
from wtforms.fields.core import UnboundField

from app import models as m
from app.services import signin_alerts
from app.services.binding import bind_accounts
from tests.conftest import KEPT_TABLES
from tests.factories import PASSWORD

#: Who calls a route: the first audience whose role may (see ``audience_of``).
AUDIENCES = ("resident", "business", "staff", "finance", "admin")
#: Generated requests per target: the whole file must stay within a few minutes in CI.
#: FUZZ_SCALE=10 multiplies them for a deeper run by hand; FUZZ_ONLY=<regex> picks targets
#: by "METHOD /rule as audience"; FUZZ_VERBOSE=1 prints each target's fields and answers.
EXAMPLES = {method: n * int(os.environ.get("FUZZ_SCALE", "1"))
            for method, n in {"POST": 8, "GET": 4}.items()}
#: The targets are fuzzed in this many parts, each a test on fresh data, so that pytest-xdist's
#: workers share them; every part keeps the order below (destructive routes last). Each part
#: crawls the pages first (a fifth of its time): one part per worker.
PARTS = 2
#: Routes run last, in this order, because a success removes what other routes need (rows,
#: roles and permissions, a binding, the resident's consent and with it the sign-in).
DESTRUCTIVE = ("action", "action_post", "delete", "unbind", "withdraw")
#: FAB's own security views edit the roles and permissions every other route relies on.
SECURITY_TABLES = KEPT_TABLES | {"ab_group"}
#: Pages the crawl never opens: they sign out, switch the language or act on a GET.
NOT_CRAWLED = ("logout", "delete", "action", "download", "export", "csv", "xlsx", "pdf",
               "receipt", "document", "file", "LocaleView", "static")
#: Tables that record attempts, refused ones included: the audit journal.
APPEND_ONLY_LOGS = {"audit_event"}
#: Notices that refused attempts send by design: guesses at a password tell its owner.
ATTEMPT_NOTICES = {signin_alerts.CODE}
#: The crawl opens at most this many pages of one endpoint, and of one audience.
PAGES_PER_ENDPOINT, MAX_PAGES = 2, 150
#: How the portal's and FAB's forms mark a field they refuse.
ERROR_MARKS = ("has-error", 'class="help-block error', 'class="alert alert-danger"',
               'role="alert"')
#: Where a request that needs a signed-in user is sent.
SIGN_IN_PAGES = {"/login/", "/auth/", "/business/login"}
#: What app/views/guards.py answers to text that is not text.
BROKEN_TEXT_ANSWER = "недопустимые символы"
URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "fuzz-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

HOSTILE_TEXT = [
    "", " ", "0", "-1", "-0.01", "1e308", "NaN", "inf", "-Infinity", str(2**31),
    str(2**31 + 1), str(2**63), str(-(2**63) - 1), "9" * 40, "0." + "9" * 40,
    "12345678901234567890.123456789", "1,5", "1 000,50", "2026-02-30", "0000-00-00",
    "9999-12-31", "10000-01-01", "31.02.2026", "2026-13-01", "1900-01-01", "a\x00b", "\x00",
    "' OR 1=1 --", "<script>alert(1)</script>", "{{ 7*7 }}", "%s%s%n", "../../etc/passwd",
    "ё" * 300, "😀" * 50, "\u202eabc", "x" * 10_000, "true", "null", "[]", "{}",
    "²", "١٢٣", "１２３", " 42 ", "4_2", "a\r\nb", "230000000001",
]
HOSTILE_PATH = ["0", "-1", str(2**31), str(2**63), "9" * 30, "abc", "1.5", "%00", "..",
                "ё", "x" * 300]
HOSTILE_FILES = [b"", b"%PDF-1.4\n%%EOF", b"\x00" * 64, b"PK\x03\x04" + b"\xff" * 200,
                 b"GIF89a" + bytes(range(256)), b"x" * 300_000]
HOSTILE_FILENAMES = ["doc.pdf", "скан паспорта.jpg", "../../etc/passwd", "a\x00b.pdf",
                     "x" * 300 + ".png", "noext", ".pdf", "image.exe"]
#: Values that pass the usual checks, so a hostile value in one field reaches the service.
PLAUSIBLE = ["1", "2", "on", "y", "2026-10-01", "2026-10", "01.10.2026", "100.50", "1234",
             "+79181112233", "fuzz@example.test", "230000000001", "230000000002", "SN-krd-1",
             "230000000011", "SN-krd-11", "Иванов Иван", "Текст обращения"]

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
NUMBER = st.one_of(st.integers(-(2**70), 2**70).map(str),
                   st.decimals(allow_nan=True, allow_infinity=True).map(str))


@dataclass
class Target:
    rule: object
    method: str
    audience: str
    allowed: bool
    fields: dict[str, set] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    observed: dict[str, set] = field(default_factory=dict)
    query: dict[str, set] = field(default_factory=dict)
    harm: int = 0  # see _harm

    @property
    def name(self) -> str:
        return f"{self.method} {self.rule.rule} as {self.audience}"


class PageParser(HTMLParser):
    """The forms (action, method, fields with their values) and links of one page."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._form: dict | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").upper(),
                          "fields": {}, "files": set()}
            self.forms.append(self._form)
        elif self._form is None or not a.get("name") and tag != "option":
            return
        elif tag in ("input", "button", "textarea"):
            values = self._form["fields"].setdefault(a["name"], set())
            if a.get("value"):
                values.add(a["value"])
            if a.get("type") == "file":
                self._form["files"].add(a["name"])
        elif tag == "select":
            self._select = a["name"]
            self._form["fields"].setdefault(a["name"], set())
        elif tag == "option" and self._select and a.get("value"):
            self._form["fields"][self._select].add(a["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


# The people, the routes and what they read ------------------------------------------------


def household(session, world, number: str, serial: str) -> dict[str, int]:
    """A household's account in the world's branch, with a meter and a bill: the world's own
    account is on its organization's contract, which a resident may not bind."""
    premises = m.Premises(branch_id=world.branch_id, locality="пос. Южный", street="ул. Мира",
                          house=number[-2:], flat="5")
    session.add(premises)
    session.flush()
    account = m.PersonalAccount(number=number, holder_name=f"Жилец {number}",
                                premises_id=premises.id, branch_id=world.branch_id,
                                tariff_group_id=world.ids["TariffGroup"], status="active",
                                opened_on=dt.date(2024, 1, 1))
    session.add(account)
    session.flush()
    meter = m.Meter(serial=serial, account_id=account.id, zones=1, digit_capacity=6)
    invoice = m.Invoice(number=f"INV-{number}", account_id=account.id,
                        period=dt.date(2026, 10, 1), opening_balance=Decimal("0"),
                        charged=Decimal("73.50"), paid=Decimal("0"),
                        amount_due=Decimal("73.50"), due_date=dt.date(2026, 11, 10))
    session.add_all([meter, invoice])
    session.commit()
    return {"PersonalAccount": account.id, "Meter": meter.id, "Invoice": invoice.id}


@pytest.fixture
def audiences(app, session, two_branches, make_user_fn):
    """A signed-in test client per audience, anonymous included; Krasnodar's rows are theirs
    (the resident's a household's account there), Novorossiysk's belong to someone else."""
    krd, nvr = two_branches
    owner = make_user_fn("owner", "Resident", kind="resident", phone="+79180000001")
    neighbour = make_user_fn("neighbour", "Resident", kind="resident")
    own = household(session, krd, "230000000011", "SN-krd-11")
    foreign = household(session, nvr, "230000000022", "SN-nvr-22")
    assert bind_accounts(session, owner.id, [("230000000011", "SN-krd-11")], None).bound
    assert bind_accounts(session, neighbour.id, [("230000000022", "SN-nvr-22")], None).bound
    users = {
        "resident": owner,
        "business": make_user_fn("org-krd", "Business", kind="business",
                                 organization_id=krd.ids["Organization"]),
        "staff": make_user_fn("operator", "Staff", branch_id=krd.branch_id),
        "finance": make_user_fn("finance", "Finance"),
        "admin": make_user_fn("admin", "Admin"),
    }
    entrances = {"resident": ("/auth/", {"login": "owner"}),
                 "business": ("/business/login", {"login": "org-krd",
                                                  "branch": krd.branch_id})}
    clients = {"anonymous": app.test_client()}
    for name in users:
        client = app.test_client()
        url, data = entrances.get(name, ("/login/", {"username": users[name].username}))
        answer = call(app, client, "POST", url, data={**data, "password": PASSWORD})
        assert answer.status_code == 302, (name, answer.status_code)
        clients[name] = client
    ids = {str(i) for rows in (krd.ids, nvr.ids, own, foreign) for i in rows.values()}
    ids |= {str(u.id) for u in (*users.values(), neighbour)}
    return clients, users, sorted(ids, key=int)


@pytest.fixture
def security_restored(app, session):
    """The roles and permissions as they were: conftest keeps them between tests, and the
    administrator's requests to FAB's security views may change them."""
    rights = Rights(session, {})
    yield
    rights.restore()


#: Who may do what: the administrator's requests to FAB's security views and to the users
#: view may take away his own rights (or another audience's) halfway through the run.
RIGHTS_TABLES = SECURITY_TABLES | {"ab_user_role", "ab_user_group", "ab_group_role"}


class Rights:
    """The roles, permissions and the audiences' accounts as they were at the start, put back
    after each request that may have changed them, so that the next routes are still
    reached by the audience that may use them."""

    def __init__(self, session, users: dict):
        self.session = session
        self.tables = [t for t in Model.metadata.sorted_tables if t.name in RIGHTS_TABLES]
        self.rows = {t: [dict(r._mapping) for r in session.execute(t.select())]
                     for t in self.tables}
        self.users = {u.id: {"active": True, "username": u.username} for u in users.values()}
        session.rollback()

    def restore(self) -> None:
        session = self.session
        session.rollback()
        user_table = Model.metadata.tables["ab_user"]
        users = set(session.scalars(select(user_table.c.id)))  # a deleted user stays deleted
        for table in reversed(self.tables):
            session.execute(table.delete())
        for table in self.tables:
            rows = [r for r in self.rows[table] if "user_id" not in r or r["user_id"] in users]
            if rows:
                session.execute(table.insert(), rows)
        for user_id, values in self.users.items():
            session.execute(user_table.update().where(user_table.c.id == user_id)
                            .values(**values))
        session.commit()


def call(app, client, method: str, url: str, ip: str = "127.0.0.1", **kwargs):
    """One request in an application context of its own, as in production: the fixture's
    context would carry the signed-in user of the previous request (Flask-Login keeps it
    in ``g``) over to the next client's."""
    with app.app_context():
        return client.open(url, method=method, environ_base={"REMOTE_ADDR": ip}, **kwargs)


def view_of(view_function):
    """The FAB view instance behind a URL rule's function, through decorators."""
    while view_function is not None:
        if getattr(view_function, "__self__", None) is not None:
            return view_function.__self__
        view_function = getattr(view_function, "__wrapped__", None)
    return None


def audience_of(app, rule, users) -> tuple[str, bool]:
    """The first audience whose role may call the route (for FAB's unguarded methods, such as
    its actions, which check inside: may use the view); anonymous when the route is not
    guarded; the administrator, not allowed, when no role may (the route must refuse)."""
    view_function = app.view_functions[rule.endpoint]
    view = view_of(view_function)
    permission = getattr(view_function, "_permission_name", None)
    fab_checks_inside = inspect.unwrap(view_function).__module__.startswith("flask_appbuilder")
    if view is None or not (permission or fab_checks_inside and view.base_permissions):
        return "anonymous", True
    method = rule.endpoint.rsplit(".", 1)[-1]
    if permission:
        permissions = ["can_" + ((view.method_permission_name or {}).get(method) or permission)]
    else:
        permissions = list(view.base_permissions)
    sm = app.appbuilder.sm
    for name in AUDIENCES:
        if any(p in view.base_permissions
               and sm._has_view_access(users[name], p, view.class_permission_name)
               for p in permissions):
            return name, True
    return "admin", False


def names_in_source(view_function) -> tuple[dict[str, set], set[str], bool]:
    """Field names a view reads: off ``request``, from the WTForms classes it builds and from
    FAB's add/edit/search forms; which of them are files; whether it reads the query string."""
    fields: dict[str, set] = {}
    files: set[str] = set()
    try:
        source = inspect.getsource(inspect.unwrap(view_function))
    except (OSError, TypeError):
        return fields, files, False
    for kind, name in re.findall(r"request\.(form|args|files|values)(?:\.get|\.getlist)?"
                                 r"\(?\[?[\"']([\w-]+)[\"']", source):
        fields.setdefault(name, set())
        if kind == "files":
            files.add(name)
    namespace = getattr(inspect.unwrap(view_function), "__globals__", {})
    forms = [namespace.get(n) for n in re.findall(r"\b(\w+Form)\(", source)]
    view = view_of(view_function)
    method = view_function.__name__
    if view is not None and method in ("add", "edit", "list", "export_xlsx"):
        forms.append(getattr(view, {"add": "add_form", "edit": "edit_form"}.get(
            method, "search_form"), None))
    for form in forms:
        if isinstance(form, type) and issubclass(form, Form):
            for name in dir(form):
                unbound = getattr(form, name, None)
                if isinstance(unbound, UnboundField):
                    fields.setdefault(name, set())
                    if issubclass(unbound.field_class, FileField):
                        files.add(name)
    if view is not None and getattr(view, "actions", None) and "action" in method:
        fields.setdefault("action", set()).update(view.actions)
        fields.setdefault("rowid", set())
    reads_query = bool(re.search(r"request\.args|get_filter_args|self\._list\(", source))
    if reads_query and view is not None and getattr(view, "_filters", None) is not None:
        fields.update(fab_list_params(view))
    return fields, files, reads_query


def fab_list_params(view) -> dict[str, set]:
    """FAB's list arguments: a filter per search column and filter kind, page, size, order."""
    name = view.__class__.__name__
    params = {f"page_{name}": {"0", "1"}, f"psize_{name}": {"25"},
              f"_oc_{name}": set(getattr(view, "list_columns", ())),
              f"_od_{name}": {"asc", "desc"}}
    for column, filters in view._filters.get_search_filters().items():
        for index in [*range(len(filters)), 9]:  # 9: past most columns' filters
            params[f"_flt_{index}_{column}"] = set()
    return params


def discover(app, clients, users) -> list[Target]:
    """Every POST route and every GET route that reads its query string, with the fields its
    source and its audience's pages name, in the order they are fuzzed."""
    targets: dict[tuple[str, str], Target] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static")) or rule.endpoint.endswith("static"):
            continue
        fields, files, reads_query = names_in_source(app.view_functions[rule.endpoint])
        audience, allowed = audience_of(app, rule, users)
        for method in ("POST", "GET"):
            if method in rule.methods and (method == "POST" or reads_query):
                targets[rule.endpoint, method] = Target(
                    rule, method, audience, allowed, {k: set(v) for k, v in fields.items()},
                    set(files))
    observed = crawl(app, clients, {t.rule.endpoint: t.audience for t in targets.values()},
                     targets)
    for target in targets.values():
        actions = getattr(view_of(app.view_functions[target.rule.endpoint]), "actions", None)
        target.observed = {**observed, "name": observed.get("name", set()) | set(actions or ())}
        target.harm = _harm(app, target)
    audiences = ("anonymous", *AUDIENCES)
    return sorted(targets.values(), key=lambda t: (
        t.harm, audiences.index(t.audience), t.rule.rule, t.method))


def _harm(app, target: Target) -> int:
    """0 for most routes; then FAB's security views; then the destructive ones, in order."""
    method = target.rule.endpoint.rsplit(".", 1)[-1]
    if method in DESTRUCTIVE:
        return 2 + DESTRUCTIVE.index(method)
    return 1 if _table_of(app, target) in SECURITY_TABLES else 0


def _table_of(app, target: Target) -> str | None:
    view = view_of(app.view_functions[target.rule.endpoint])
    model = getattr(getattr(view, "datamodel", None), "obj", None)
    return getattr(model, "__tablename__", None)


def crawl(app, clients, audience_of_endpoint, targets) -> dict[str, set]:
    """Open each audience's pages from its start pages following links (a few per endpoint):
    note the forms they show for the targets, and every value seen in a URL argument."""
    adapter = app.url_map.bind("localhost")
    observed: dict[str, set] = {}

    def match(url: str, method: str):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        try:
            endpoint, args = adapter.match(parts.path, method)
        except (HTTPException, RequestRedirect):
            return None
        for key, value in args.items():
            observed.setdefault(key, set()).add(str(value))
            observed.setdefault(f"{endpoint}:{key}", set()).add(str(value))
        return endpoint, parts

    for who, client in clients.items():
        starts = [r.rule for r in app.url_map.iter_rules()
                  if "GET" in r.methods and not r.arguments
                  and audience_of_endpoint.get(r.endpoint, who) == who
                  and not any(word in r.endpoint for word in NOT_CRAWLED)
                  and not r.rule.startswith(("/api/", "/swagger"))]
        queue, seen, opened = list(starts), set(), {}
        while queue and len(seen) < MAX_PAGES:
            url = queue.pop(0)
            found = match(url, "GET")
            if url in seen or found is None or opened.get(found[0], 0) >= PAGES_PER_ENDPOINT:
                continue
            seen.add(url)
            opened[found[0]] = opened.get(found[0], 0) + 1
            response = call(app, client, "GET", url)
            if response.status_code != 200 or "html" not in response.content_type:
                continue
            page = PageParser()
            page.feed(response.get_data(as_text=True))
            for form in page.forms:
                action = urljoin(url, form["action"] or url)
                hit = match(action, form["method"])
                if hit and (hit[0], form["method"]) in targets:
                    target = targets[hit[0], form["method"]]
                    for name, values in form["fields"].items():
                        if name != "csrf_token":  # off in tests; its value differs every run
                            target.fields.setdefault(name, set()).update(values)
                    target.files |= form["files"]
                    for key, value in parse_qsl(hit[1].query):
                        target.query.setdefault(key, set()).add(value)
            for link in page.links:
                absolute = urljoin(url, link)
                hit = match(absolute, "GET")
                if hit is None:
                    continue
                endpoint, parts = hit
                if (endpoint, "GET") in targets:
                    for key, value in parse_qsl(parts.query):
                        targets[endpoint, "GET"].fields.setdefault(key, set()).add(value)
                if (audience_of_endpoint.get(endpoint, who) == who
                        and not any(word in endpoint for word in NOT_CRAWLED)):
                    queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return observed


# What a request holds ---------------------------------------------------------------------


def pick(values) -> st.SearchStrategy:
    values = sorted(values, key=str)
    return st.sampled_from(values) if values else st.nothing()


def hostile_strategy(ids: list[str]) -> st.SearchStrategy:
    single = st.one_of(pick(PLAUSIBLE + ids), pick(HOSTILE_TEXT), TEXT, NUMBER)
    return st.one_of(single, st.lists(single, min_size=2, max_size=3))


def value_strategy(known: set, ids: list[str]) -> st.SearchStrategy:
    return st.one_of(pick(known), hostile_strategy(ids))


def usual_strategy(known: set) -> st.SearchStrategy:
    """A value the form itself offers (a default, an option), else a plausible one."""
    return pick(known) if known else pick(PLAUSIBLE)


def file_strategy() -> st.SearchStrategy:
    return st.builds(lambda content, name: (io.BytesIO(content), name),
                     pick(HOSTILE_FILES), pick(HOSTILE_FILENAMES))


def path_strategy(rule, target: Target, ids: list[str]) -> st.SearchStrategy:
    """Arguments of the URL: values seen in links to this route, in any link, other users'
    ids, ids past any column and garbage."""
    args = {}
    for name in rule.arguments:
        here = target.observed.get(f"{rule.endpoint}:{name}", set())
        seen = target.observed.get(name, set())
        if isinstance(rule._converters[name], IntegerConverter):
            pool = [v for v in seen | set(ids) if v.isdigit()]
            args[name] = st.one_of(pick(here), pick(pool), pick(
                ["0", str(2**31), str(2**63 - 1), str(2**63), "9" * 30]))
        else:
            args[name] = st.one_of(pick(here), pick(seen), pick(ids), pick(HOSTILE_PATH))
    return st.fixed_dictionaries(args)


def request_strategy(target: Target, ids: list[str]) -> st.SearchStrategy:
    text_fields = {name: value_strategy(known, ids) for name, known in target.fields.items()
                   if name not in target.files}
    file_fields = {name: file_strategy() for name in sorted(target.files)}
    every = {**text_fields, **file_fields}
    usual = {name: usual_strategy(known) for name, known in target.fields.items()
             if name not in target.files}
    one_bad = st.tuples(st.fixed_dictionaries(usual), pick(usual), hostile_strategy(ids)).map(
        lambda t: {**t[0], t[1]: t[2]})
    data = st.one_of(st.fixed_dictionaries(usual), one_bad, st.fixed_dictionaries(every),
                     st.fixed_dictionaries({}, optional=every))
    query = st.one_of(
        st.fixed_dictionaries({name: usual_strategy(k) for name, k in target.query.items()}),
        st.fixed_dictionaries({}, optional={name: value_strategy(k, ids)
                                            for name, k in target.query.items()}))
    return st.tuples(path_strategy(target.rule, target, ids), data, query)


def url_for_rule(rule, args: dict) -> str:
    path = rule.rule
    for name, value in args.items():
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(str(value), safe=""), path)
    return path


# The checks --------------------------------------------------------------------------------


def row_counts(session) -> dict[str, int]:
    """Rows per table, by name: PostgreSQL may answer the branches of a UNION ALL in any
    order (a parallel append), so the rows' order means nothing."""
    rows = dict(session.execute(_row_counts_query()).tuples().all())
    session.rollback()
    return rows


@functools.cache
def _row_counts_query():
    """Built once: the fuzzing counts rows after every request, over some fifty tables."""
    tables = [t for t in Model.metadata.sorted_tables if t.name not in APPEND_ONLY_LOGS]
    return union_all(*(select(literal(t.name).label("t"), func.count().label("n"))
                       .select_from(t).where(*_not_attempt_notices(t)) for t in tables))


def _not_attempt_notices(table) -> list:
    return [table.c.code.notin_(ATTEMPT_NOTICES)] if table.name == "notice_log" else []


def refused(response, flashed: list[str]) -> bool:
    """The answer says the request was not accepted: a client error, the form shown again
    with an error on it, or a redirect with an error to show on the next page."""
    if 400 <= response.status_code < 500 or "danger" in flashed:
        return True
    if response.status_code == 200 and "html" in response.content_type:
        body = response.get_data(as_text=True)
        return any(mark in body for mark in ERROR_MARKS)
    return False


def flashes(client, clear: bool = False) -> list[str]:
    """The categories of the messages waiting in the client's session for the next page."""
    with client.application.app_context(), client.session_transaction() as flask_session:
        waiting = flask_session.pop("_flashes", []) if clear else flask_session.get(
            "_flashes", [])
    return [category for category, _message in waiting]


def where_it_failed() -> str:
    """The portal's own frames of the exception being handled, and the last library ones."""
    frames = traceback.extract_tb(sys.exc_info()[2])
    shown = [f for f in frames[:-3] if "site-packages" not in f.filename] + frames[-3:]
    error = sys.exc_info()[1]
    return "".join(traceback.format_list(shown)) + f"{type(error).__name__}: {error}"[:500]


def fuzz(target: Target, client, session, ids: list[str], failures: list[str],
         ip: str) -> tuple[list[int], int]:
    """Run the generated requests of one target from its own IP address (the per-address
    throttles start afresh); record server errors and refusals that changed rows. Returns
    the status of every answer (0 for a sign-in page) and how many were refusals."""
    answers: list[int] = []
    refusals = []

    @settings(max_examples=EXAMPLES[target.method], derandomize=True, database=None,
              deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(request=request_strategy(target, ids))
    def run(request):
        args, data, query = request
        url = url_for_rule(target.rule, args)
        before = row_counts(session)
        flashes(client, clear=True)
        try:
            if target.method == "GET":
                response = call(client.application, client, "GET", url, ip,
                                query_string=data)
                if urlsplit(response.location or "").path == url:  # the list, minus bad args
                    response = call(client.application, client, "GET", response.location, ip)
            else:
                response = call(client.application, client, "POST", url, ip, data=data,
                                query_string=query, content_type="multipart/form-data")
        except Exception:  # the app propagates its errors under TESTING: a 500 in production
            session.rollback()
            failures.append(f"{target.name}: {url} {query or ''} {data!r:.300}\n"
                            f"{where_it_failed()}")
            return
        target_url = urlsplit(response.location or "")
        signed_out = target_url.path in SIGN_IN_PAGES and "next=" in target_url.query
        answers.append(0 if response.status_code == 302 and signed_out
                       else response.status_code)
        if response.status_code >= 500:
            failures.append(f"{target.name}: {url} {data!r:.300} -> {response.status_code}")
        elif refused(response, flashes(client)):
            refusals.append(url)
            after = row_counts(session)
            if after != before:
                changed = {t: (before[t], n) for t, n in after.items() if before[t] != n}
                failures.append(f"{target.name}: {url} {data!r:.300} was refused "
                                f"({response.status_code}) but changed rows: {changed}")

    run()
    return answers, len(refusals)


def broken_request(target: Target, number: int) -> dict:
    """A request of the target whose text is not text, of the kind its number picks: bytes
    that are not UTF-8 in the query string, a NUL in a field's name, and for a POST bytes that
    are not UTF-8 in an urlencoded body (percent-encoded or raw) or a multipart one."""
    name = quote(min(target.fields, default="q"), safe="")
    kinds = [{"query_string": f"{name}=%FF%FE"}, {"query_string": f"{name}%00=1"}]
    if target.method == "POST":
        kinds += [{"data": f"{name}=ok%C3%28".encode(), "content_type": URLENCODED},
                  {"data": name.encode() + b"=\xff\xfe", "content_type": URLENCODED},
                  {"data": multipart_body(name, b"\xd0\xff"), "content_type": MULTIPART}]
    return kinds[number % len(kinds)]


@functools.cache
def body_past(limit: int) -> bytes:
    """A body one byte past the limit, made once: Werkzeug refuses it by its length."""
    return b"x" * (limit + 1)


def multipart_body(name: str, value: bytes) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value + f"\r\n--{BOUNDARY}--\r\n".encode())


def refuse_broken_and_large(target: Target, client, session, number: int, ip: str,
                            user_name: str, failures: list[str]) -> None:
    """The target's request with text that is not text gets guards.py's 400 and a body past
    MAX_CONTENT_LENGTH the 413 page, both showing the signed-in user's name (a page that
    lost its user is a server error in production); neither changes a row."""
    app = client.application
    limit = app.config["MAX_CONTENT_LENGTH"]
    oversized = {"data": body_past(limit),
                 "content_type": MULTIPART if target.files else URLENCODED}
    url = url_for_rule(target.rule, {name: "1" for name in target.rule.arguments})
    before = row_counts(session)
    for what, kwargs, status, text in (
            ("text that is not text", broken_request(target, number), 400, BROKEN_TEXT_ANSWER),
            ("a body too large", oversized, 413, f"{math.ceil(limit / 2**20)} МБ")):
        try:
            response = call(app, client, target.method, url, ip, **kwargs)
        except Exception:  # the app propagates its errors under TESTING: a 500 in production
            session.rollback()
            failures.append(f"{target.name}: {what}: {url} {kwargs!r:.200}\n{where_it_failed()}")
            continue
        page = response.get_data().decode("utf-8", "replace").replace("\u00a0", " ")
        if response.status_code != status or text not in page or user_name not in page:
            failures.append(f"{target.name}: {what}: {url} {kwargs!r:.200} -> "
                            f"{response.status_code}, not {status} with «{text}» for "
                            f"«{user_name}»")
    after = row_counts(session)
    if after != before:
        changed = {t: (before[t], n) for t, n in after.items() if before[t] != n}
        failures.append(f"{target.name}: refused as hostile but changed rows: {changed}")


@pytest.mark.committed  # a back-office form may start a job, whose progress has a connection
@pytest.mark.parametrize("part", range(PARTS), ids=lambda part: f"part{part + 1}of{PARTS}")
def test_no_form_or_query_string_gets_a_server_error(app, session, security_restored,
                                                     audiences, part):
    clients, users, ids = audiences
    targets = discover(app, clients, users)
    assert {t.method for t in targets} == {"GET", "POST"}
    only = os.environ.get("FUZZ_ONLY")  # a regular expression over "POST /path as who"
    targets = [t for t in targets if not only or re.search(only, t.name)][part::PARTS]
    failures: list[str] = []
    unreached, let_in, checked = [], [], 0
    rights = Rights(session, users)
    for number, target in enumerate(targets, start=1):
        ip = f"10.0.{number // 256}.{number % 256}"
        answers, refusals = fuzz(target, clients[target.audience], session, ids, failures, ip)
        if target.method == "POST" and _table_of(app, target) in RIGHTS_TABLES | {"ab_user"}:
            rights.restore()
        user = users.get(target.audience)  # its name only while no route may have removed it
        refuse_broken_and_large(target, clients[target.audience], session, number, ip,
                                user.get_full_name() if user and not target.harm else "",
                                failures)
        checked += refusals
        if os.environ.get("FUZZ_VERBOSE"):
            print(f"{target.name}: {sorted(target.fields)} {Counter(answers)}, "
                  f"{refusals} refused")
        if not target.allowed:
            if any(200 <= a < 300 for a in answers):
                let_in.append(target.name)
        elif (target.audience != "anonymous" and target.harm != 1  # 1: may lose the rights
              and not any(a not in (0, 403) for a in answers)):
            unreached.append(target.name)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
    assert not let_in, f"routes no role may use let the administrator in: {let_in}"
    assert not unreached, f"every request was sent to sign in or refused: {unreached}"
    assert checked > len(targets), f"only {checked} refusals were checked for changed rows"
