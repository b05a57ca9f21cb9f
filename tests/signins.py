"""A browser session for a test that puts a user straight into the session cookie instead of
posting a sign-in form: the sign-in's row (app.services.sessions) and the id that Flask-Login
keeps, as app.security.sign_in makes them."""
from __future__ import annotations

import datetime as dt

from app.extensions import db
from app.services import sessions

LIFETIME = dt.timedelta(hours=12)


def session_user_id(user, remember: bool = False) -> str:
    """Open a browser sign-in for ``user`` and return the session's ``_user_id``."""
    opened = sessions.open_session(db.session, user.id, sessions.WEB, LIFETIME,
                                   remember=remember, user_agent="pytest")
    user.session_row_id, user.session_token = opened.id, opened.token
    return user.get_id()


def browser_sign_out(page, url: str = "/auth/logout") -> None:
    """Sign a browser page out as a person does: the sign-out page's «Выйти» button (a GET of
    the address alone signs no one out)."""
    page.goto(url)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Выйти").click()
