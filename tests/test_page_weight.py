"""Light pages: static files under hashed names, compressed once and cached a year; pages
compressed; the portal's icons; and what /cabinet/ really costs on the wire, cold and warm,
measured in headless Chromium."""
from __future__ import annotations

import gzip
import json
import re
import struct
from pathlib import Path
from urllib.parse import urljoin

import brotli
import pytest
from flask import Flask, render_template, url_for

from app import assets
from app.services.binding import bind_accounts
from tests.factories import PASSWORD

COLD_LIMIT = 250 * 1024
WARM_LIMIT = 30 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = f"public, max-age={assets.SHORT_MAX_AGE}"
STATIC = Path(assets.__file__).parent / "static"
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}


def fetch(client, url: str, encoding: str | None = None):
    """(status, headers, body as sent) of a GET, the file closed after it."""
    response = client.get(url, headers={"Accept-Encoding": encoding} if encoding else {})
    try:
        return response.status_code, response.headers, response.get_data()
    finally:
        response.close()


def static_url(app, filename: str, endpoint: str = "static") -> str:
    with app.test_request_context():
        return url_for(endpoint, filename=filename)


# Hashed names, far-future caching, compressed copies


def test_url_for_names_a_hashed_file_kept_a_year_and_sent_compressed(app, client):
    url = static_url(app, "css/portal.css")
    assert re.fullmatch(r"/static/css/portal\.[0-9a-f]{12}\.css", url), url
    _status, _headers, plain = fetch(client, url)
    assert plain == (STATIC / "css/portal.css").read_bytes()
    for encoding, decode in DECODE.items():
        status, headers, body = fetch(client, url, encoding)
        assert status == 200 and headers["Content-Encoding"] == encoding
        assert headers["Cache-Control"] == IMMUTABLE
        assert "Accept-Encoding" in headers["Vary"]
        assert len(body) < len(plain) / 2 and decode(body) == plain


def test_the_plain_name_still_answers_but_is_cached_briefly(app, client):
    status, headers, body = fetch(client, "/static/css/portal.css", "gzip")
    assert status == 200 and headers["Cache-Control"] == SHORT
    assert gzip.decompress(body) == (STATIC / "css/portal.css").read_bytes()
    status, headers, body = fetch(client, "/static/css/portal.css")
    assert "Content-Encoding" not in headers and body == (STATIC / "css/portal.css").read_bytes()


def test_fab_files_are_hashed_too_and_their_stylesheets_name_hashed_fonts(app, client):
    url = static_url(app, "css/fontawesome/solid.min.css", "appbuilder.static")
    assert re.fullmatch(r"/static/appbuilder/css/fontawesome/solid\.min\.[0-9a-f]{12}\.css", url)
    status, headers, body = fetch(client, url, "br")
    assert status == 200 and headers["Cache-Control"] == IMMUTABLE
    fonts = re.findall(r"url\(([^)]+)\)", brotli.decompress(body).decode())
    assert fonts and all(re.search(r"\.[0-9a-f]{12}\.(woff2|ttf)$", font) for font in fonts)
    status, headers, font = fetch(client, urljoin(url, fonts[0]))
    assert status == 200 and headers["Cache-Control"] == IMMUTABLE and len(font) > 10_000


def test_static_files_carry_the_security_headers(app, client):
    _status, headers, _body = fetch(client, static_url(app, "js/confirm.js"), "gzip")
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "nonce" not in csp["script-src"] and "'unsafe-inline'" not in csp["script-src"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in headers


def small_app(tmp_path: Path, **config) -> Flask:
    """An app of one static folder, built into its own instance folder."""
    flask_app = Flask("small", static_folder=str(tmp_path / "static"),
                      instance_path=str(tmp_path / "instance"))
    flask_app.config.update(config)
    assets.init_app(flask_app)
    return flask_app


def test_a_changed_file_gets_another_url_at_the_next_start(tmp_path):
    (tmp_path / "static").mkdir()
    script = tmp_path / "static" / "app.js"
    script.write_text("console.log('первая версия');\n" * 100)
    first = small_app(tmp_path, PRODUCTION=True)
    before = static_url(first, "app.js")
    script.write_text("console.log('вторая, исправленная версия');\n" * 100)
    assert static_url(first, "app.js") == before  # production reads no file per page
    second = small_app(tmp_path, PRODUCTION=True)
    after = static_url(second, "app.js")
    assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.js", after) and after != before
    status, headers, body = fetch(second.test_client(), after, "br")
    assert status == 200 and headers["Cache-Control"] == IMMUTABLE
    assert brotli.decompress(body) == script.read_bytes()


def test_outside_production_a_file_edited_while_running_gets_a_new_url(tmp_path):
    (tmp_path / "static").mkdir()
    sheet = tmp_path / "static" / "site.css"
    sheet.write_text("body { color: black; }\n")
    flask_app = small_app(tmp_path)
    before = static_url(flask_app, "site.css")
    sheet.write_text("body { color: navy; margin: 0; }\n")
    after = static_url(flask_app, "site.css")
    assert after != before
    client = flask_app.test_client()
    assert fetch(client, after)[2] == sheet.read_bytes()
    assert fetch(client, "/static/site.css")[2] == sheet.read_bytes()
    (tmp_path / "static" / "new.js").write_text("let added = true;\n")
    assert re.fullmatch(r"/static/new\.[0-9a-f]{12}\.js", static_url(flask_app, "new.js"))


def test_a_name_outside_the_folder_is_never_built(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "secret.txt").write_text("не для чужих глаз")
    flask_app = small_app(tmp_path)
    assert static_url(flask_app, "../secret.txt") == "/static/../secret.txt"
    built = [p.name for p in (tmp_path / "instance").rglob("*")]
    assert not any("secret" in name for name in built), built


# Compressed pages


@pytest.mark.parametrize("encoding", sorted(DECODE))
def test_pages_are_compressed(client, encoding):
    status, headers, body = fetch(client, "/auth/", encoding)
    assert status == 200 and headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in headers["Vary"]
    assert '<html lang="ru">' in DECODE[encoding](body).decode()


def test_a_tiny_answer_is_not_worth_compressing(client):
    status, headers, body = fetch(client, "/cabinet/", "gzip")  # a redirect to the sign-in
    assert status == 302 and len(body) < assets.COMPRESS_SETTINGS["COMPRESS_MIN_SIZE"]
    assert "Content-Encoding" not in headers


# Icons


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_icons_are_pngs_of_their_sizes_named_by_the_manifest():
    icons = STATIC / "icons"
    assert png_size((icons / "apple-touch-icon.png").read_bytes()) == (180, 180)
    manifest = json.loads((icons / "site.webmanifest").read_text())
    assert manifest["lang"] == "ru" and "НЭСК" in manifest["name"]
    pngs = [icon for icon in manifest["icons"] if icon["type"] == "image/png"]
    assert {icon["sizes"] for icon in pngs} == {"192x192", "512x512"}
    for icon in pngs:
        width = int(icon["sizes"].split("x")[0])
        assert png_size((icons / icon["src"]).read_bytes()) == (width, width)


def test_the_icons_partial_names_hashed_icons(app, client):
    with app.test_request_context():
        html = render_template("portal/_icons.html")
    links = dict(re.findall(r'<link rel="([\w-]+)"[^>]* href="([^"]+)"', html))
    assert set(links) == {"icon", "apple-touch-icon", "manifest"}
    for rel, expected in (("apple-touch-icon", "image/png"), ("icon", "image/svg+xml"),
                          ("manifest", "application/manifest+json")):
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", links[rel]), links[rel]
        status, headers, _body = fetch(client, links[rel])
        assert status == 200 and headers["Content-Type"].startswith(expected)
        assert headers["Cache-Control"] == IMMUTABLE


# What /cabinet/ costs on the wire


def weigh(cdp_events: list[dict]) -> tuple[int, list[tuple[int, str]]]:
    """Bytes received (headers and body as sent, compressed) of finished requests, and the
    heaviest of them: a file the browser took from its cache counts nothing."""
    urls = {e["requestId"]: e["request"]["url"] for kind, e in cdp_events
            if kind == "sent"}
    sizes = sorted(((int(e["encodedDataLength"]), urls.get(e["requestId"], "?"))
                    for kind, e in cdp_events if kind == "done"), reverse=True)
    return sum(size for size, _url in sizes), sizes


def describe(name: str, total: int, sizes: list[tuple[int, str]]) -> str:
    heaviest = ", ".join(f"{url.rsplit('/', 1)[-1]} {size / 1024:.1f}"
                         for size, url in sizes[:5] if size)
    return f"{name} {total / 1024:.1f} KB in {len(sizes)} requests ({heaviest})"


@pytest.mark.browser
def test_cabinet_is_light_cold_and_warm(browser, live_server, session, make_user_fn,
                                        two_branches):
    user = make_user_fn("weigher", "Resident", kind="resident", phone="+79185550012")
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1"),
                                     ("230000000002", "SN-NVR-2")], None)
    session.commit()
    # Signed in in a context of its own: the sign-in page's files must not warm the cache.
    signing_in = browser.new_context(base_url=live_server, locale="ru-RU")
    page = signing_in.new_page()
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550012")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    assert page.url.endswith("/cabinet/")
    state = signing_in.storage_state()
    signing_in.close()

    # The wire, not the app's service worker (tests/test_pwa.py weighs that path).
    context = browser.new_context(base_url=live_server, locale="ru-RU", storage_state=state,
                                  viewport={"width": 1280, "height": 900},
                                  service_workers="block")
    context.set_default_timeout(45_000)
    try:
        page = context.new_page()
        events: list = []
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", lambda e: events.append(("sent", e)))
        cdp.on("Network.loadingFinished", lambda e: events.append(("done", e)))
        page.goto("/cabinet/", wait_until="networkidle")
        assert page.url.endswith("/cabinet/") and "230000000001" in page.content()
        cold, cold_sizes = weigh(events)
        events.clear()
        page.reload(wait_until="networkidle")
        warm, warm_sizes = weigh(events)
    finally:
        context.close()
    figures = (f"{describe('cold', cold, cold_sizes)}; {describe('warm', warm, warm_sizes)}; "
               f"limits {COLD_LIMIT // 1024} and {WARM_LIMIT // 1024} KB")
    print(figures)
    assert cold > 0 and warm > 0, figures
    assert cold <= COLD_LIMIT, figures
    assert warm <= WARM_LIMIT, figures
    refetched = [url for size, url in warm_sizes if size and "/static/" in url]
    assert not refetched, f"a reload fetched static files again: {refetched}"
