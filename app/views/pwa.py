"""The portal as an installable app (PWA): /app/ explains installing it, /app/start is where the
installed app opens (the right cabinet, else the right sign-in), and the web app manifest and
the service worker are served from the root, so that the worker's scope is the whole portal.

The manifest's source is app/static/icons/site.webmanifest; pages name it at a URL carrying a
hash of its content (cached a year, like the static files), its icons at their hashed names.
The worker (templates/pwa/sw.js) is revalidated on every check (no-cache) and carries a version
derived from the static build and its own source: a deploy that changes either installs a new
worker, which drops the old caches. A signed-in user's answers carry X-App-User, an opaque key
of the user (the pages name it too): the worker keeps its saved copies per key and serves a
copy only to the user it was saved for."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from posixpath import dirname, join, normpath

from flask import (
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_appbuilder import BaseView, expose
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.assets import SHORT_MAX_AGE, YEAR

MANIFEST_SOURCE = "icons/site.webmanifest"
MANIFEST_TYPE = "application/manifest+json"
WORKER_TEMPLATE = "pwa/sw.js"
USER_HEADER = "X-App-User"
#: Which cabinet and which sign-in an installed app opens for each kind of user.
CABINETS = {"resident": "CabinetView.home", "business": "BusinessView.home"}
SIGN_INS = {"resident": "ResidentAuthView.signin", "business": "BusinessAuthView.signin"}
#: Remembers whose app this is, so that a signed-out organization's app opens its own sign-in.
AUDIENCE_COOKIE = "lk_app_audience"
#: Files every page needs, kept by the worker when it installs (besides the offline page).
PRECACHED = ("css/portal.css", "js/app.js", "js/confirm.js", "js/form-keeper.js",
             "favicon.svg", "icons/icon-192.png", "icons/apple-touch-icon.png")


def user_key(user_id: int) -> str:
    """An opaque, stable key of a user for the app's caches and queue: it tells users apart
    on one device without showing anyone's id."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(secret, f"app-user:{user_id}".encode(), hashlib.sha256).hexdigest()[:24]


def current_user_key() -> str:
    """The signed-in user's key for the page's <meta name="app-user">; empty for a visitor."""
    if current_user and current_user.is_authenticated:
        return user_key(current_user.id)
    return ""


def manifest_text() -> str:
    """The manifest with its icons at their hashed URLs."""
    data = json.loads((Path(current_app.static_folder) / MANIFEST_SOURCE).read_text("utf-8"))
    for icon in data.get("icons", []):
        icon["src"] = url_for("static",
                              filename=normpath(join(dirname(MANIFEST_SOURCE), icon["src"])))
    return json.dumps(data, ensure_ascii=False)


def content_version(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:12]


def manifest_url() -> str:
    """The manifest's URL named by every page: a new one whenever the manifest changes."""
    return url_for("PwaView.manifest", version=content_version(manifest_text()))


def worker_version() -> str:
    """The version in the worker's cache names: the hashed name of every static file and the
    worker's own source, so any deploy that changes what a page loads renews it."""
    digest = hashlib.sha256()
    for endpoint, folder in sorted(current_app.extensions.get("assets", {}).items()):
        for name, hashed in sorted(folder.names.items()):
            digest.update(f"{endpoint}:{name}:{hashed}\n".encode())
    source, _path, _uptodate = current_app.jinja_env.loader.get_source(current_app.jinja_env,
                                                                       WORKER_TEMPLATE)
    digest.update(source.encode())
    return digest.hexdigest()[:12]


def mark_user(response):
    """X-App-User on a signed-in user's GET answers (pages, bill PDFs): the worker keeps a copy
    under this key only. The user is looked at only when the request loaded it already, so a
    request that never asked (an API call) costs no query."""
    user = g.get("_login_user")
    if request.method == "GET" and user is not None and user.is_authenticated:
        response.headers[USER_HEADER] = user_key(user.id)
    return response


class PwaView(BaseView):
    """The app's pages and files: public, for installing before signing in."""

    route_base = ""
    default_view = "index"

    @expose("/app/")
    def index(self):
        return self.render_template("pwa/index.html", title="Приложение для телефона",
                                    kind=getattr(current_user, "kind", None))

    @expose("/app/start")
    def start(self):
        """The installed app's start_url: the user's own cabinet, the back office's home for
        staff, else the sign-in of the audience that used this device last."""
        if current_user.is_authenticated:
            kind = getattr(current_user, "kind", None)
            if kind not in CABINETS:
                return redirect(url_for("PortalIndexView.index"))
            response = redirect(url_for(CABINETS[kind]))
            response.set_cookie(AUDIENCE_COOKIE, kind, max_age=YEAR, httponly=True,
                                samesite="Lax",
                                secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
            return response
        audience = request.cookies.get(AUDIENCE_COOKIE)
        return redirect(url_for(SIGN_INS.get(audience, SIGN_INS["resident"])))

    @expose("/app/offline")
    def offline(self):
        """What the worker shows for a page it has no copy of when there is no network."""
        return self.render_template("pwa/offline.html", title="Нет связи")

    @expose("/app/token")
    def token(self):
        """A fresh CSRF token for the queue's requests: the page it was typed on may be an
        old copy from the worker's cache."""
        response = jsonify(csrf_token=generate_csrf())
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/manifest.webmanifest")
    def plain_manifest(self):
        return self._manifest(immutable=False)

    @expose("/manifest.<string(length=12):version>.webmanifest")
    def manifest(self, version: str):
        """The manifest under the hash of its content, kept a year; an older hash (a page
        rendered before a deploy) gets today's manifest, kept briefly."""
        return self._manifest(immutable=version == content_version(manifest_text()))

    def _manifest(self, *, immutable: bool):
        response = make_response(manifest_text())
        response.mimetype = MANIFEST_TYPE
        response.headers["Cache-Control"] = (f"public, max-age={YEAR}, immutable" if immutable
                                             else f"public, max-age={SHORT_MAX_AGE}")
        return response

    @expose("/sw.js")
    def worker(self):
        """The service worker, at the root so that its scope is the whole portal."""
        precache = [url_for("static", filename=name) for name in PRECACHED]  # first: the
        # static build notices a changed file when it is named (outside production)
        body = render_template(
            WORKER_TEMPLATE, version=worker_version(), precache=precache,
            offline_url=url_for(".offline"), start_url=url_for(".start"),
            icon_url=url_for("static", filename="icons/icon-192.png"))
        response = make_response(body)
        response.mimetype = "text/javascript"
        response.headers["Cache-Control"] = "no-cache"
        return response


def register(appbuilder) -> None:
    appbuilder.add_view_no_menu(PwaView)
    current_app.after_request(mark_user)
    current_app.jinja_env.globals.update(app_user_key=current_user_key,
                                         app_manifest_url=manifest_url)
