"""The security manager and the role policy.

Roles other than Admin are FAB "builtin" roles: their permissions are data (ROLE_POLICY below,
turned into FAB_ROLES regexes), checked in memory without a query; so is Public, the role of
anonymous visitors, which has no permission at all (the public pages need none). Admin is a
database role that receives every permission when `flask fab create-permissions` syncs them;
its permissions are read once per request (PortalSecurityManager), not once per check.
"""
from __future__ import annotations

import hmac
import re
from functools import cache
from types import SimpleNamespace

from flask import current_app, flash, g, has_request_context, redirect, request
from flask_appbuilder import expose
from flask_appbuilder._compat import as_unicode
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    Role,
    ViewMenu,
    assoc_group_role,
    assoc_permissionview_role,
    assoc_user_group,
    assoc_user_role,
)
from flask_appbuilder.security.views import AuthDBView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_login import current_user
from sqlalchemy import Select, and_, bindparam, select, true, union_all
from sqlalchemy.orm import joinedload, load_only

from app import replica
from app.models import Organization, PortalUser, UserSession, password_stamp, utcnow
from app.services import audit, challenge, sessions, signin_alerts
from app.services.phones import normalize_phone
from app.services.signin_guard import ChallengeNeeded, Refusal
from app.services.throttle import Throttled, signin_throttle
from app.views.api_base import token_error_answers
from app.views.api_security import PortalSecurityApi
from app.views.roles import SECURITY_VIEWS
from app.views.signing import (
    SESSION_CLAIM,
    STAMP_CLAIM,
    renew_session,
    request_ip,
    sign_in,
    sign_out_answer,
    web_lifetime,
)
from app.views.users import SubscriberView

#: The user's columns an API call reads on every request.
API_USER_COLUMNS = ("id", "username", "active", "kind", "branch_id", "organization_id",
                    "must_change_password", "password")
#: A session's user id as PortalUser.get_id gives it: the id (an integer column), the
#: password's stamp and the sign-in's token.
SESSION_ID = re.compile(r"([1-9][0-9]{0,9})\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
def _user_with_roles(*options) -> Select:
    """The user of the ``id`` parameter, once per role, with the role's id and name as plain
    values (direct roles and those of the user's groups; one row of None without any):
    eager-loaded role and group objects cost the ORM more per request than the query. Each
    row also has the user's live sign-in of the ``kind`` whose token hashes to ``token_hash``
    (None without one), and whether its «last used» is older than ``stale_before``. Read
    on the primary even on a replica's page: an ended sign-in ends at once."""
    user_id = bindparam("id")
    signed_in = and_(UserSession.user_id == PortalUser.id,
                     UserSession.token_hash == bindparam("token_hash"),
                     UserSession.kind == bindparam("kind"),
                     sessions.live(bindparam("now", type_=UserSession.expires_at.type)))
    role_ids = union_all(
        select(assoc_user_role.c.role_id.label("role_id"))
        .where(assoc_user_role.c.user_id == user_id),
        select(assoc_group_role.c.role_id)
        .join(assoc_user_group, assoc_user_group.c.group_id == assoc_group_role.c.group_id)
        .where(assoc_user_group.c.user_id == user_id),
    ).subquery()
    stale = UserSession.last_used_at < bindparam("stale_before",
                                                   type_=UserSession.last_used_at.type)
    return (select(PortalUser, Role.id, Role.name, UserSession.id.label("session_id"),
                   UserSession.remember, stale.label("stale"))
            .select_from(PortalUser)
            .outerjoin(UserSession, signed_in)
            .outerjoin(role_ids, true())
            .outerjoin(Role, Role.id == role_ids.c.role_id)
            .where(PortalUser.id == user_id)
            .options(*options)
            .execution_options(**{replica.ON_PRIMARY: True}))


@cache
def _signed_in_user() -> Select:
    """The statement of PortalSecurityManager.load_user, built once (it runs on every
    request; building it costs more than running it): with an organization's user's
    organization and its branch, which every page of the organization's cabinet shows."""
    return _user_with_roles(joinedload(PortalUser.organization).joinedload(Organization.branch))


@cache
def _api_user() -> Select:
    """The statement of PortalSecurityManager.load_user_jwt: the API's user needs only the
    columns that say who may see what (the others load on first use)."""
    return _user_with_roles(load_only(*(getattr(PortalUser, name) for name in API_USER_COLUMNS)))


def _signed_in_with_roles(session, statement: Select, user_id: int, kind: str,
                          token: str) -> PortalUser | None:
    """The user of _user_with_roles's statement, its roles kept as plain values for
    PortalSecurityManager.get_user_roles and its sign-in as ``session_row_id`` and
    ``session_token`` (for get_id); None when inactive, unknown or without a live sign-in of
    that token. The sign-in's use is noted once a sessions.TOUCH_EVERY."""
    now = utcnow()
    rows = session.execute(statement, {
        "id": user_id, "kind": kind, "token_hash": sessions.token_hash(token), "now": now,
        "stale_before": now - sessions.TOUCH_EVERY}).all()
    first = rows[0] if rows else None
    if first is None or first.session_id is None or not first[0].is_active:
        return None
    user = first[0]
    user.effective_roles = [SimpleNamespace(id=row[1], name=row[2])
                            for row in rows if row[1] is not None]
    user.session_row_id, user.session_token = first.session_id, token
    if first.stale:
        idle = None if kind != sessions.WEB or first.remember else web_lifetime(False)
        sessions.touch(session, first.session_id, request_ip(), idle)
    return user


class StaffAuthDBView(AuthDBView):
    """FAB's /login/ is the back-office entrance: staff only. Residents and organizations
    have their own forms (/auth/, /business/login)."""

    @expose("/login/", methods=["GET", "POST"])
    @no_cache
    def login(self):
        """FAB's AuthDBView.login, signing in through sign_in."""
        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        g.signin_check = lambda user: user.kind == "staff"
        form = LoginForm_db()
        if form.validate_on_submit():
            next_url = get_safe_redirect(request.args.get("next", ""))
            g.signin_proof = request.form.get(challenge.FIELD)
            user = self.appbuilder.sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                refusal = g.pop("signin_refusal", None)
                if refusal is None:
                    flash(as_unicode(self.invalid_login_message), "warning")
                    return redirect(self.appbuilder.get_url_for_login_with(next_url))
                return self._refused(form, refusal)
            sign_in(user)
            return redirect(next_url)
        return self.render_template(self.login_template, title=self.title, form=form,
                                    appbuilder=self.appbuilder)

    def _refused(self, form, refusal: Refusal):
        """The form again with why: the time to wait (429, Retry-After), or the «not a robot»
        check the next attempt needs."""
        flash(refusal.message or as_unicode(self.invalid_login_message), "danger")
        page = self.render_template(self.login_template, title=self.title, form=form,
                                    appbuilder=self.appbuilder, challenge=refusal.challenge,
                                    refused=True)
        if refusal.retry_after:
            return page, 429, {"Retry-After": str(refusal.retry_after)}
        return page

    @expose("/logout/", methods=["GET", "POST"])
    def logout(self):
        return sign_out_answer(self, current_app.config.get(
            "LOGOUT_REDIRECT_URL", self.appbuilder.get_url_for_index))


class PortalSecurityManager(SecurityManager):
    """FAB's manager with the portal's user model, phone logins, audit events and the
    access pages in Russian (app.views.roles)."""

    user_model = PortalUser
    authdbview = StaffAuthDBView

    def __init__(self, appbuilder):
        self.userdbmodelview = SubscriberView
        for attribute, view in SECURITY_VIEWS.items():
            setattr(self, attribute, view)
        self.security_api = PortalSecurityApi
        super().__init__(appbuilder)

    def create_jwt_manager(self, app):
        """FAB's JWT manager, whose refusals answer like the rest of the API."""

        jwt_manager = super().create_jwt_manager(app)
        token_error_answers(jwt_manager)
        return jwt_manager

    def load_user(self, pk):
        """The signed-in user of a session (``PortalUser.get_id``: id, password stamp and the
        sign-in's token), its roles (direct and through groups) as plain values, its live
        sign-in, and an organization's user's organization and its branch, in one query:
        every permission check reads the roles, every page of the organization's cabinet
        shows the rest. None once the sign-in ended or expired, or the password changed."""
        match = SESSION_ID.fullmatch(str(pk))
        if not match:
            return None  # a session from before the sign-in rows, or a malformed one
        user_id, stamp, token = match.groups()
        user = _signed_in_with_roles(self.session, _signed_in_user(), int(user_id),
                                     sessions.WEB, token)
        if user is None or not hmac.compare_digest(stamp.encode(),
                                                   password_stamp(user.password).encode()):
            return None
        return user

    def load_user_jwt(self, _jwt_header, jwt_data):
        """The API's user (flask-jwt-extended's user loader) with its sign-in, and FAB's
        ``g.user``; None once the sign-in ended (the app signed out) or expired, or the
        password changed since the token was issued."""
        user = _signed_in_with_roles(self.session, _api_user(), int(jwt_data["sub"]),
                                     sessions.API, str(jwt_data.get(SESSION_CLAIM, "")))
        stamp = str(jwt_data.get(STAMP_CLAIM, "")).encode()
        if user is None or \
                not hmac.compare_digest(stamp, password_stamp(user.password).encode()):
            return None
        g.user = user
        return user

    def get_user_roles(self, user):
        """The roles the API's user loader read with the user, else FAB's: the user's roles
        and the roles of the user's groups."""
        effective = getattr(user, "effective_roles", None)
        return effective if effective is not None else super().get_user_roles(user)

    def is_item_public(self, permission_name, view_name):
        """Whether anonymous visitors may use a view: in memory when Public is a builtin role
        (FAB asks on every API call and would query the role and its permissions)."""
        if self.auth_role_public in self.builtin_roles:
            return self._has_access_builtin_roles(SimpleNamespace(name=self.auth_role_public),
                                                  permission_name, view_name)
        return super().is_item_public(permission_name, view_name)

    def exist_permission_on_roles(self, view_name, permission_name, role_ids):
        """Whether database roles (Admin) grant a permission, from their permissions read once
        per request: FAB would query on each check, about thirty times for one page's menu.
        Outside a request (the CLI) it asks the database every time."""
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        return (permission_name, view_name) in self._role_permissions(tuple(sorted(role_ids)))

    def _role_permissions(self, role_ids: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        """Kept on the request itself: a role edited now counts from the next request on."""
        known = getattr(request, "role_permissions", None)
        if known is None:
            known = request.role_permissions = {}
        if role_ids not in known:
            known[role_ids] = frozenset(self.session.execute(
                select(Permission.name, ViewMenu.name)
                .join(PermissionView, PermissionView.permission_id == Permission.id)
                .join(ViewMenu, PermissionView.view_menu_id == ViewMenu.id)
                .join(assoc_permissionview_role,
                      assoc_permissionview_role.c.permission_view_id == PermissionView.id)
                .where(assoc_permissionview_role.c.role_id.in_(role_ids))
            ).tuples())
        return known[role_ids]

    def reset_password(self, userid, password):
        """FAB's password reset (a staff member's own, or an administrator's for anyone); the
        user's own keeps this browser signed in (renew_session), anyone else's ends every
        sign-in of that user."""
        super().reset_password(userid, password)
        if has_request_context() and current_user.is_authenticated \
                and current_user.id == int(userid):  # FAB's form passes the id as text
            renew_session(current_user._get_current_object())
        else:
            sessions.end_all(self.session, int(userid))

    def find_user(self, username=None, email=None):
        """Find by username, then by e-mail, then by phone number in any usual Russian form."""
        user = super().find_user(username=username, email=email)
        if user is None and username:
            phone = normalize_phone(username)
            if phone:
                user = self.session.query(self.user_model).filter_by(phone=phone).one_or_none()
        return user

    def _remote_ip(self) -> str | None:
        """The client's address: ProxyFix has put there the one the trusted proxies saw."""
        return request.remote_addr if has_request_context() else None

    def auth_user_db(self, username, password):
        """FAB's password check behind every entrance (/login/, the API, the portal's own
        forms), limited to the users the entrance admits (``g.signin_check``, a predicate on
        the user: kind, branch) and guarded by app.services.signin_guard before any hashing:
        hard limits per account and address and per address, and the «not a robot» proof
        (``g.signin_proof``) an account under attack asks from addresses it does not know.
        What the entrance should show beyond «wrong password» is left in
        ``g.signin_refusal`` (a signin_guard.Refusal)."""
        ip = self._remote_ip()
        login = (username or "").strip()
        proof = g.pop("signin_proof", None) if has_request_context() else None
        if not login:
            return None
        found = self.find_user(username=login) or self.find_user(email=login)
        guard = signin_throttle()
        subject = guard.subject(found.id if found is not None else None, login)
        try:
            guard.admit(subject, ip, proof)
        except Throttled as exc:
            audit.record(self.session, "login.throttled", ip=ip)
            self._refuse(Refusal(str(exc), retry_after=exc.retry_after))
            return None
        except ChallengeNeeded as exc:
            self._refuse(Refusal(str(exc), challenge=exc.challenge))
            return None
        user = super().auth_user_db(login, password)
        if user is not None and not self._admitted(user):
            user = None
        if user is None:
            failures = guard.failed(subject, ip)
            actor = g.pop("failed_user_id", None)
            audit.record(self.session, "login.failure", actor_id=actor, ip=ip,
                         object_type="user" if actor else None, object_id=actor)
            if found is not None and found.is_active:
                signin_alerts.note_failures(found.id, failures)
            next_challenge = guard.next_challenge(subject, ip, failures)
            if next_challenge:
                self._refuse(Refusal(None, challenge=next_challenge))
            return None
        guard.succeeded(subject, ip)
        return user

    @staticmethod
    def _refuse(refusal: Refusal) -> None:
        if has_request_context():
            g.signin_refusal = refusal

    @staticmethod
    def _admitted(user) -> bool:
        check = g.get("signin_check") if has_request_context() else None
        return check is None or bool(check(user))

    def update_user_auth_stat(self, user, success=True):
        if success and not self._admitted(user):
            success = False
        super().update_user_auth_stat(user, success)
        if not success:
            g.failed_user_id = user.id
        else:
            audit.record(self.session, "login.success", actor_id=user.id, object_type="user",
                         object_id=user.id, ip=self._remote_ip())
