"""HTTP security headers on every response (Flask-Talisman).

Scripts run only from the portal's own origin or, inline, with the request's nonce: every
inline ``<script>`` of the portal's and FAB's templates carries ``nonce="{{ csp_nonce() }}"``
(FAB's as ``baselib.get_nonce()``), and no template has inline event handlers (``onclick=``);
so an injected script does not run. Styles keep 'unsafe-inline': templates and FAB's widgets
still use ``style`` attributes and ``<style>`` blocks, which cannot take a nonce (and a nonce
in style-src would switch 'unsafe-inline' off). form-action is left open on purpose: paying
posts a form whose answer redirects to the gateway's hosted page (YooKassa), and browsers apply
form-action to that redirect too. Nothing of the portal is meant to be framed."""
from __future__ import annotations

import secrets

from flask import Flask, has_request_context, request
from flask_talisman import Talisman

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",  # and the request's nonce (content_security_policy_nonce_in)
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",  # FAB's and Swagger UI's stylesheets embed SVG icons
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = {"browsing-topics": "()", "camera": "()", "microphone": "()",
                      "geolocation": "()", "payment": "()"}


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
