"""HTTP security headers on every response (Flask-Talisman).

Scripts run only from the portal's own origin or, inline, with the request's nonce: every
inline ``<script>`` of the portal's and FAB's templates carries ``nonce="{{ csp_nonce() }}"``
(FAB's as ``baselib.get_nonce()``), and no template has inline event handlers (``onclick=``);
so an injected script does not run. Styles keep 'unsafe-inline': templates and FAB's widgets
still use ``style`` attributes and ``<style>`` blocks, which cannot take a nonce (and a nonce
in style-src would switch 'unsafe-inline' off). form-action is left open on purpose: paying
posts a form whose answer redirects to the gateway's hosted page (YooKassa), and browsers apply
form-action to that redirect too. Nothing of the portal is meant to be framed.

Every answer to a signed-in person and every answer of the API (tokens, personal data) is
``Cache-Control: no-store``, so that after signing out on a shared computer the back button
and the browser's cache show nothing; public pages, static files and what a view marks
``public`` (not a download) keep their caching."""
from __future__ import annotations

import secrets

from flask import Flask, current_app, g, has_request_context, request, session
from flask_talisman import Talisman

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",  # and the request's nonce (content_security_policy_nonce_in)
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",  # FAB's and Swagger UI's stylesheets embed SVG icons
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self'",  # the app's service worker, /sw.js (app/views/pwa.py)
    "manifest-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = {"browsing-topics": "()", "camera": "()", "microphone": "()",
                      "geolocation": "()", "payment": "()"}
#: Endpoints of files that are the same for everyone (Flask's and FAB's static folders).
STATIC_ENDPOINT = "static"


def csp_nonce() -> str:
    """The request's script nonce, made on first use: also for responses built before
    Talisman's own before_request ran (a CSRF error page, a redirect to HTTPS). Empty outside
    a request (a letter rendered by a Celery task has no policy to satisfy)."""
    if not has_request_context():
        return ""
    nonce = getattr(request, "csp_nonce", None)
    if not nonce:
        nonce = request.csp_nonce = secrets.token_urlsafe(24)
    return nonce


def init_app(app: Flask) -> None:
    """One Talisman per app: it keeps its options and the app on itself."""
    config = app.config
    app.extensions["talisman"] = Talisman(
        app,
        force_https=bool(config.get("FORCE_HTTPS")),
        strict_transport_security=int(config.get("HSTS_MAX_AGE") or 0) > 0,
        strict_transport_security_max_age=int(config.get("HSTS_MAX_AGE") or 0),
        strict_transport_security_include_subdomains=False,
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy=PERMISSIONS_POLICY,
        # The cookie settings stay config.py's (SECURE_COOKIES): Talisman would otherwise
        # force Secure on the session cookie even for a plain-HTTP demo.
        session_cookie_secure=bool(config.get("SESSION_COOKIE_SECURE")),
        session_cookie_samesite=config.get("SESSION_COOKIE_SAMESITE", "Lax"),
        x_content_type_options=True,
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(no_store_when_personal)


def no_store_when_personal(response):
    """No copy of a personal answer anywhere: Cache-Control no-store (and HTTP/1.0's Pragma)
    unless the answer is a static file or one its view marks public and is no download."""
    if (request.endpoint or "").rpartition(".")[2] == STATIC_ENDPOINT:
        return response
    download = "attachment" in response.headers.get("Content-Disposition", "")
    if response.cache_control.public and not download:
        return response
    if personal():
        if not response.cache_control.no_store:
            response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def personal() -> bool:
    """Whether the answer may carry a person's data: an API call (a token, or the answer to
    signing in), a request with a token, or a signed-in user; when the request never looked
    at its user, a session or a «Запомнить меня» cookie that names one."""
    if request.path.startswith("/api/") or "Authorization" in request.headers:
        return True
    user = g.get("_login_user")  # Flask-Login's, once something asked for current_user
    if user is not None:
        return bool(user.is_authenticated)
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    return "_user_id" in session or remember in request.cookies
