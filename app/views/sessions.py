"""Where a person is signed in: the list of their live sign-ins (browsers and the mobile app)
with «Завершить» for one and «Выйти на всех устройствах» for all but this one.

Residents see the list in the profile (/cabinet/profile/, its endpoints under
/cabinet/profile/sessions/), organizations on a page of their cabinet (/business/sessions/).
Each audience's view has its own permission, as the push devices' do (app/views/push.py), and
acts only on the signed-in user's sign-ins; the rules are app.services.sessions."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db, reads_only
from app.services import sessions as sessions_service
from app.views.cabinet import entrance

ENDED = "Вход на устройстве «{}» завершён."
NOT_YOURS = "Этот вход уже завершён."
OTHERS_ENDED = "Вы вышли на всех устройствах, кроме этого."
NO_OTHERS = "Других входов нет: вы вошли только на этом устройстве."
THIS_ONE = "Чтобы выйти на этом устройстве, нажмите «Выйти» вверху страницы."


def page_context(view: str) -> dict:
    """What the list (cabinet/profile_sessions.html) shows: the user's live sign-ins, this
    browser's first, and where its buttons post."""
    this = getattr(current_user, "session_row_id", None)
    sign_ins = sorted(sessions_service.active(db.session, current_user.id),
                      key=lambda row: row.id != this)
    return {"sign_ins": sign_ins, "this_sign_in": this,
            "end_endpoint": f"{view}.end", "end_others_endpoint": f"{view}.end_others"}


class _SessionEndpoints:
    """The buttons both audiences share; ``page`` is where the list is."""

    page = ""

    def _end(self, session_id: int):
        if session_id == getattr(current_user, "session_row_id", None):
            flash(THIS_ONE, "info")  # signing out is «Выйти»'s, with the caches it clears
            return redirect(url_for(self.page))
        device = sessions_service.end(db.session, current_user.id, session_id,
                                      request.remote_addr)
        if device is None:
            flash(NOT_YOURS, "danger")
        else:
            flash(ENDED.format(device), "success")
        return redirect(url_for(self.page))

    def _end_others(self):
        ended = sessions_service.end_others(db.session, current_user.id,
                                            getattr(current_user, "session_row_id", None),
                                            request.remote_addr)
        flash(OTHERS_ENDED if ended else NO_OTHERS, "success" if ended else "info")
        return redirect(url_for(self.page))


class ResidentSessionsView(_SessionEndpoints, BaseView):
    """A resident's sign-ins, listed in the profile: allowed to whoever may open it."""

    route_base = "/cabinet/profile/sessions"
    class_permission_name = "ProfileView"
    method_permission_name = {"end": "index", "end_others": "index"}
    page = "ProfileView.index"

    @expose("/<int:session_id>/end", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def end(self, session_id: int):
        return self._end(session_id)

    @expose("/end-others", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def end_others(self):
        return self._end_others()


class BusinessSessionsView(_SessionEndpoints, BaseView):
    """An organization user's sign-ins: allowed to whoever may open the organization's
    cabinet."""

    route_base = "/business/sessions"
    default_view = "index"
    class_permission_name = "BusinessView"
    method_permission_name = {"index": "home", "end": "home", "end_others": "home"}
    page = "BusinessSessionsView.index"

    @expose("/")
    @entrance("BusinessAuthView.signin")
    @has_access
    @reads_only
    def index(self):
        return self.render_template("business/sessions.html", title="Входы в кабинет",
                                    **page_context("BusinessSessionsView"))

    @expose("/<int:session_id>/end", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def end(self, session_id: int):
        return self._end(session_id)

    @expose("/end-others", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def end_others(self):
        return self._end_others()


def register(appbuilder) -> None:
    appbuilder.add_view_no_menu(ResidentSessionsView)
    appbuilder.add_view_no_menu(BusinessSessionsView)
