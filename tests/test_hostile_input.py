"""Hostile input never gives a 500, and no personal answer is kept by a browser or a cache.

- Text that is not text (a NUL byte, bytes that are not UTF-8, a lone surrogate) in a JSON body,
  a header the portal reads, a cookie, the path or a form: 400 in Russian (JSON under /api/),
  with nothing written; PostgreSQL refuses a NUL where SQLite stores it, so the suite's
  PostgreSQL run is the one that shows the difference (app/views/guards.py).
- A body over MAX_CONTENT_LENGTH: the 413 page, signed in or not (tests/test_fuzz_forms.py
  sends one to every route).
- ``Cache-Control: no-store`` and ``Pragma: no-cache`` on every answer to a signed-in user and
  every API answer, downloads included; the landing, the sign-in pages and static files keep
  their caching (app/headers.py).
"""
from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import pytest
from flask import url_for
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from app import models as m
from app.services import acts
from app.services.binding import bind_accounts
from tests.factories import PASSWORD

API = "/api/v1"
REFUSED_PAGE = "недопустимые символы"
REFUSED_API = "Неверный запрос: нулевой байт или текст не в кодировке UTF-8."
#: Pages anyone opens: they keep the browser's usual caching (FAB's own /login/ is no-store
#: by its decorator, as it was before).
PUBLIC_PAGES = ("/", "/auth/", "/auth/register", "/business/login", "/readings/", "/pay/",
                "/feedback/", "/contacts/", "/app/")
#: GET routes the sweep leaves out: signing out and switching the language act on a GET (the
#: answer to signing out goes to someone no longer signed in), and FAB's delete and action
#: links would remove the rows (or the user) the next routes need.
NOT_SWEPT = re.compile(r"logout|LocaleView|\.delete$|\.action$")
#: Answers that are the same for everyone and say so (``public``): the web app manifest.
SHARED_FILES = {"PwaView.manifest", "PwaView.plain_manifest"}


def send(client, method: str, url: str, **kwargs):
    """One request in an application context of its own, as in production: the test's
    context would carry the previous request's user over in ``g`` (Flask-Login keeps it
    there), and with it whether the answer is a signed-in user's."""
    with client.application.app_context():
        return client.open(url, method=method, **kwargs)


def api_login(client, username: str, **extra):
    return send(client, "POST", f"{API}/security/login",
                json={"username": username, "password": PASSWORD, "provider": "db", **extra})


def audit_rows(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(m.AuditEvent))


def refused_page(response) -> bool:
    return (response.status_code == 400 and response.mimetype == "text/html"
            and REFUSED_PAGE in response.get_data(as_text=True))


def refused_json(response) -> bool:
    return response.status_code == 400 and response.get_json() == {"message": REFUSED_API}


def no_store(response) -> bool:
    return response.cache_control.no_store and response.headers.get("Pragma") == "no-cache"


@pytest.fixture
def resident(client, session, make_user_fn, two_branches):
    """A resident with Krasnodar's household account bound, signed in through /auth/."""
    user = make_user_fn("owner", "Resident", kind="resident")
    assert bind_accounts(session, user.id, [("230000000001", "SN-krd-1")], None).bound
    assert send(client, "POST", "/auth/", data={"login": "owner", "password": PASSWORD}
                ).status_code == 302
    return user


# Text that is not text ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"username": "org\\u0000", "password": "x", "provider": "db"}',  # the PostgreSQL 500
    b'{"username": "org", "password": "x\\u0000", "provider": "db"}',
    b'{"username\\u0000": "org", "password": "x", "provider": "db"}',
    b'{"username": "\\ud800", "password": "x", "provider": "db"}',  # psycopg cannot encode it
    b'{"username": "\xff\xfe", "password": "x", "provider": "db"}',
    b'{"username": ["org", {"deep": ["\\u0000"]}], "password": "x", "provider": "db"}',
    b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's json reads
], ids=["nul-value", "nul-password", "nul-key", "surrogate", "not-utf8", "nul-nested", "deep"])
def test_api_sign_in_with_broken_text_is_refused(app, client, session, two_branches,
                                                 make_user_fn, body):
    krd, _ = two_branches
    make_user_fn("org", "Business", kind="business", organization_id=krd.ids["Organization"])
    before = audit_rows(session)
    response = send(client, "POST", f"{API}/security/login", data=body,
                    content_type="application/json")
    assert refused_json(response), (response.status_code, response.get_data()[:200])
    assert audit_rows(session) == before  # not even a failed sign-in: the view never ran
    assert no_store(response)


def test_api_accepts_unicode_that_is_text(client, two_branches, make_user_fn):
    """The guard refuses only what is not text: Cyrillic, emoji and an escaped U+FFFD pass."""
    krd, _ = two_branches
    make_user_fn("org", "Business", kind="business", organization_id=krd.ids["Organization"])
    wrong = send(client, "POST", f"{API}/security/login", content_type="application/json",
                 data='{"username": "орг 😀 \\ufffd", "password": "x", '
                      '"provider": "db", "branch": 1}'.encode())
    assert wrong.status_code == 401
    signed_in = api_login(client, "org", branch=krd.branch_id)
    assert signed_in.status_code == 200 and "access_token" in signed_in.get_json()
    assert no_store(signed_in)  # tokens in the answer


@pytest.mark.parametrize("header, value", [
    ("User-Agent", "Mozilla/5.0\x00"),
    ("User-Agent", "Mozilla/5.0 \xff\xfe"),  # raw bytes, as a WSGI server passes them
    ("Referer", "http://localhost/cabinet/\x00"),
    ("Referer", "http://localhost/\xc3\x28"),
    ("Accept-Language", "ru\x00"),
    ("X-Forwarded-For", "\xff"),
])
def test_a_broken_header_is_refused_in_russian(client, resident, header, value):
    response = send(client, "GET", "/cabinet/", headers={header: value})
    assert refused_page(response)
    page = response.get_data(as_text=True)
    assert "Тест Owner" in page  # the refusal still shows who is signed in
    assert no_store(response)


def test_a_broken_token_header_is_refused_as_json(client):
    for value in ("Bearer abc\x00", "Bearer \xff\xfe"):
        response = send(client, "GET", f"{API}/account/", headers={"Authorization": value})
        assert refused_json(response), value


@pytest.mark.parametrize("cookie", ["session=\xff\xfe", "session=abc\x00def",
                                    "remember_token=\xc3\x28", "lk_app_audience=business\x00"])
def test_a_broken_cookie_is_refused_not_a_server_error(app, cookie):
    """Werkzeug reads a Cookie header that is not UTF-8 with an exception, before any hook
    runs: the guard drops it and refuses the request."""
    client = app.test_client(use_cookies=False)
    for url in ("/", "/cabinet/", "/auth/"):
        response = send(client, "GET", url, headers={"Cookie": cookie})
        assert refused_page(response), (url, response.status_code)
    assert refused_json(send(client, "GET", f"{API}/account/", headers={"Cookie": cookie}))


@pytest.mark.parametrize("url", ["/pay/result/abc%00", "/cabinet/?period=%c3%28", "/?q=%00",
                                 "/cabinet/?q=%ff"])
def test_a_broken_path_or_query_is_refused(client, resident, url):
    assert refused_page(send(client, "GET", url))


@pytest.mark.parametrize("environ", [{"PATH_INFO": "/unsubscribe/\xff\xfe"},
                                     {"PATH_INFO": "/cabinet/", "QUERY_STRING": "q=\xff"}])
def test_raw_bytes_that_are_not_utf8_are_refused(client, resident, environ):
    """As a WSGI server passes them: the path's and the query's bytes undecoded (Werkzeug's
    test client would encode or replace them first)."""
    assert refused_page(send(client, "GET", "/", environ_overrides=environ))


def test_forms_with_broken_text_change_nothing(client, session, two_branches):
    """Urlencoded (percent-encoded and raw) and multipart bodies: a NUL, bytes that are not
    UTF-8, a NUL in a file name; the same form with good text is saved."""
    krd, _ = two_branches
    fields = urlencode({"name": "Анна Смирнова", "email": "anna@example.com",
                        "branch": krd.branch_id, "topic": "Начисления и счета",
                        "consent": "1", "website": ""}) + "&message="
    before = session.scalar(select(func.count()).select_from(m.Feedback))
    for tail in (b"%FF%FE", b"%C3%28", b"%00", b"\xff", b"ok%ED%A0%80"):
        response = send(client, "POST", "/feedback/", data=fields.encode() + tail,
                        content_type="application/x-www-form-urlencoded")
        assert refused_page(response), tail
    boundary = "hostile"
    for value, filename in ((b"\xff\xfe", "a.pdf"), (b"ok\x00", "a.pdf"),
                            (b"ok", "a\x00b.pdf")):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n"
                ).encode() + value + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n"
            f"--{boundary}--\r\n").encode()
        response = send(client, "POST", "/feedback/", data=body,
                        content_type=f"multipart/form-data; boundary={boundary}")
        assert refused_page(response), (value, filename)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(m.Feedback)) == before
    sent = send(client, "POST", "/feedback/", data=fields.encode() + "Почему 😀?".encode(),
                content_type="application/x-www-form-urlencoded")
    assert sent.status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(m.Feedback)) == before + 1


def test_an_address_from_the_proxy_must_be_one(make_app, session):
    """Behind a trusted proxy the client's address comes from X-Forwarded-For: one that is
    no address (or longer than the journal keeps) is refused, not a database error."""
    client = make_app(PROXY_COUNT=1).test_client()
    assert send(client, "GET", "/", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
    assert send(client, "GET", "/", headers={"X-Forwarded-For": "2001:db8::1"}).status_code == 200
    for value in ("not-an-address", "203.0.113.5, " + "9" * 60,
                  "fe80::1%" + "x" * 60, "' OR 1=1 --"):
        response = send(client, "POST", "/feedback/", headers={"X-Forwarded-For": value},
                        data={"name": "Анна", "message": "Текст"})
        assert refused_page(response), value


# Too large ------------------------------------------------------------------------------------


def test_a_30_mb_upload_gets_the_413_page_signed_in(app, client, resident):
    scan = b"x" * (30 * 2**20)
    response = send(client, "POST", "/cabinet/applications/new",
                    content_type="multipart/form-data",
                    data={"applicant_name": "Иванов", "files": (io.BytesIO(scan), "scan.pdf")})
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Заявка не отправлена" in page and "не более 30 МБ" in page  # the form's own
    assert "Тест Owner" in page
    response = send(client, "POST", "/cabinet/feedback/", content_type="multipart/form-data",
                    data={"message": "Текст", "file": (io.BytesIO(scan), "scan.pdf")})
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Слишком большой запрос" in page and "Не более 30 МБ" in page
    assert "Тест Owner" in page
    assert no_store(response)


@pytest.mark.parametrize("url", ["/auth/", "/feedback/", "/cabinet/applications/new",
                                 "/readings/", "/login/"])
def test_a_body_too_large_gets_the_413_page_anonymous(app, url):
    client = app.test_client()
    body = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = send(client, "POST", url, data=body,
                    content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert "30 МБ" in response.get_data(as_text=True)
    json = send(client, "POST", f"{API}/security/login", data=body,
                content_type="application/json")
    assert json.status_code == 413 and json.get_json()["message"].startswith(
        "Слишком большой запрос")


# No copy of a personal answer -----------------------------------------------------------------


def fill(rule, values: dict[str, str]) -> str:
    """A URL of the rule with the world's ids where the argument names one (a missing row
    answers too, and must be no-store as well)."""
    path = rule.rule
    for name in rule.arguments:
        converter = rule._converters[name]
        default = "1" if isinstance(converter, IntegerConverter) else "x"
        value = values.get(f"{rule.endpoint}:{name}", values.get(name, default))
        path = re.sub(rf"<(?:[^:<>]+(?:\([^)]*\))?:)?{name}>", value, path)
    return path


def sweep(app, client, values: dict[str, str], prefix: str = "") -> dict[str, int]:
    """GET every route under ``prefix`` (but NOT_SWEPT) with the client; fail on any answer
    that is not no-store, but for SHARED_FILES. Returns status by URL."""
    statuses, kept = {}, []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if ("GET" not in rule.methods or not rule.rule.startswith(prefix)
                or NOT_SWEPT.search(rule.endpoint) or rule.endpoint.endswith("static")):
            continue
        url = fill(rule, values)
        response = send(client, "GET", url)
        statuses[url] = response.status_code
        if response.cache_control.public:  # only what is the same for everyone says so
            assert rule.endpoint in SHARED_FILES and "attachment" not in response.headers.get(
                "Content-Disposition", ""), url
        elif not no_store(response):
            kept.append(f"{url} {response.status_code} {response.headers.get('Cache-Control')}")
    assert not kept, "answers to a signed-in user without no-store:\n" + "\n".join(kept)
    return statuses


def world_values(world, **extra) -> dict[str, str]:
    return {"account_id": str(world.ids["PersonalAccount"]),
            "invoice_id": str(world.ids["Invoice"]), "act_id": str(world.ids["ReconciliationAct"]),
            "application_id": str(world.ids["ContractApplication"]), "fmt": "xlsx",
            "version": "v1", "kind": "email", "column": "account",
            "PwaView.manifest:version": "0" * 12, **extra}


def test_every_page_and_download_of_a_resident_is_no_store(app, client, resident,
                                                           two_branches):
    krd, _ = two_branches
    statuses = sweep(app, client, world_values(krd, pk=str(krd.ids["Invoice"])))
    account = krd.ids["PersonalAccount"]
    for url in ("/cabinet/", "/cabinet/profile/", f"/cabinet/bills/{account}",
                f"/cabinet/consumption/{account}/csv", f"/cabinet/consumption/{account}/xlsx",
                f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf", "/cabinet/profile/export",
                "/cabinet/invoices/list/", "/", "/app/"):
        assert statuses[url] == 200, url  # the sweep reached the pages that matter


def test_every_page_and_download_of_an_organization_is_no_store(app, client, session,
                                                                two_branches, make_user_fn):
    krd, _ = two_branches
    make_user_fn("org", "Business", kind="business", organization_id=krd.ids["Organization"])
    signed_in = send(client, "POST", "/business/login",
                     data={"login": "org", "password": PASSWORD, "branch": krd.branch_id})
    assert signed_in.status_code == 302
    acts.decide(session, session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"]), None,
                "ready")
    account, invoice = krd.ids["OrganizationAccount"], krd.ids["OrganizationInvoice"]
    statuses = sweep(app, client, world_values(krd, account_id=str(account),
                                               invoice_id=str(invoice)), prefix="/business/")
    for url in ("/business/", f"/business/account/{account}", f"/business/invoice/{invoice}.pdf",
                f"/business/acts/{krd.ids['ReconciliationAct']}.xlsx"):
        assert statuses[url] == 200, url


def test_every_back_office_page_and_export_is_no_store(app, client, two_branches,
                                                       make_user_fn):
    krd, _ = two_branches
    make_user_fn("admin", "Admin")
    assert send(client, "POST", "/login/", data={"username": "admin", "password": PASSWORD}
                ).status_code == 302
    statuses = sweep(app, client, world_values(krd, pk=str(krd.ids["ReconciliationAct"])))
    for url in ("/personalaccountview/list/", "/invoiceview/export/xlsx",
                f"/reconciliationactview/document/{krd.ids['ReconciliationAct']}/xlsx",
                "/paymentreconciliationview/export.xlsx", "/users/list/"):
        assert statuses[url] == 200, url
    # FAB's own 500s on a malformed path: a chart's grouping, a file column's download.
    assert statuses["/userstatschartview/chart/x"] == 404
    assert statuses["/groups/download/x"] == 404


def test_every_api_answer_is_no_store(app, client, two_branches, make_user_fn):
    krd, _ = two_branches
    make_user_fn("org", "Business", kind="business", organization_id=krd.ids["Organization"])
    token = api_login(client, "org", branch=krd.branch_id).get_json()["access_token"]
    answers = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(f"{API}/") and "GET" in rule.methods:
            url = fill(rule, {"pk": str(krd.ids["OrganizationInvoice"])})
            answers[url] = send(client, "GET", url, headers={"Authorization": f"Bearer {token}"})
    kept = [url for url, response in answers.items() if not no_store(response)]
    assert not kept
    assert answers[f"{API}/invoice/{krd.ids['OrganizationInvoice']}/pdf"].status_code == 200
    assert answers[f"{API}/account/"].status_code == 200
    assert no_store(send(client, "GET", f"{API}/account/"))  # refused without a token: still JSON


def test_public_pages_and_static_files_keep_their_caching(app, client, resident):
    anonymous = app.test_client()
    for url in PUBLIC_PAGES:
        response = send(anonymous, "GET", url)
        assert response.status_code == 200, url
        assert not response.cache_control.no_store and "Pragma" not in response.headers, url
    with app.test_request_context():
        static = url_for("static", filename="css/portal.css")  # its hashed name
    for who in (anonymous, client):  # signed in or not: a static file is everyone's
        response = send(who, "GET", static)
        assert response.status_code == 200
        assert response.cache_control.public and response.cache_control.max_age > 0
        assert not response.cache_control.no_store
    assert no_store(send(client, "GET", "/"))  # the landing, to a signed-in resident, is theirs

