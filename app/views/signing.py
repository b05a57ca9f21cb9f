"""Signing in and out of every entrance (the cabinet's forms, the codes, FAB's /login/, the
API): the sign-in's row (app.services.sessions) behind Flask-Login's session, its lifetimes."""
from __future__ import annotations

from flask import current_app, has_request_context, redirect, request
from flask_jwt_extended.config import config as jwt_config
from flask_login import current_user, login_user, logout_user

from app.extensions import db
from app.services import sessions

#: The API token's claim with the password's stamp (app.services.passwords.password_stamp).
STAMP_CLAIM = "stamp"
#: The API token's claim with its sign-in's token (app.services.sessions).
SESSION_CLAIM = "sid"
#: The page a GET of a sign-out address shows: a button, since a link anywhere can make a
#: browser GET it.
SIGN_OUT_TEMPLATE = "auth/signout.html"

def request_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def web_lifetime(remember: bool):
    """How long a browser's sign-in lasts: the «Запомнить меня» cookie's term, else
    PERMANENT_SESSION_LIFETIME without use."""
    config = current_app.config
    return config["REMEMBER_COOKIE_DURATION"] if remember \
        else config["PERMANENT_SESSION_LIFETIME"]


def api_lifetime(refresh: bool):
    """How long the mobile app's sign-in lasts: its refresh token's term (or its access
    token's, without one); a token configured never to expire still ends in a year."""
    term = jwt_config.refresh_expires if refresh else jwt_config.access_expires
    return term if term else current_app.config["REMEMBER_COOKIE_DURATION"] * 12


def sign_in(user, remember: bool = False) -> None:
    """Every browser sign-in of every entrance: open its row (app.services.sessions), then
    Flask-Login's session and «Запомнить меня» cookie with the row's token in the user's id.
    A sign-in that this browser had before ends."""
    previous = getattr(current_user, "session_row_id", None) \
        if current_user.is_authenticated else None
    if previous is not None:
        sessions.end(db.session, current_user.id, previous, journal=False)
    opened = sessions.open_session(db.session, user.id, sessions.WEB, web_lifetime(remember),
                                   remember=remember, ip=request_ip(),
                                   user_agent=request.headers.get("User-Agent"))
    user.session_row_id, user.session_token = opened.id, opened.token
    login_user(user, remember=remember)


def sign_out() -> None:
    """End this browser's sign-in: its row, so that a copy of its cookies opens nothing, and
    Flask-Login's session and «Запомнить меня» cookie."""
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        row_id = getattr(user, "session_row_id", None)
        if row_id is not None:
            sessions.end(db.session, user.id, row_id, journal=False)
        current_app.appbuilder.sm.on_user_logout(user)
    logout_user()


def sign_out_answer(view, after: str):
    """The sign-out of every entrance: a POST (with the CSRF token, checked by CSRFProtect)
    signs out; a GET, which any page elsewhere can make a browser send, shows the «Выйти»
    button to a signed-in user and changes nothing."""
    if request.method == "POST":
        sign_out()
        return redirect(after)
    if not current_user.is_authenticated:
        return redirect(after)
    return view.render_template(SIGN_OUT_TEMPLATE, title="Выход из личного кабинета")


def renew_session(user) -> None:
    """After the user's own new password: the session of this browser, whose id carries the
    old stamp, is issued again on the same sign-in (with its "remember me" cookie, if it has
    one); every other sign-in of the user, browser or app, ends."""
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") \
        in request.cookies
    keep = getattr(user, "session_row_id", None)
    sessions.end_others(db.session, user.id, keep, request_ip(), journal=False)
    if keep is None:
        sign_in(user, remember)
    else:
        login_user(user, remember=remember)
