"""The front door: residents sign in, register and recover a password by a one-time code;
organizations sign in with login, password and branch. Views parse forms and call
app.services.auth; the rules live there."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models import Branch
from app.plugins import DeliveryError
from app.services import auth as auth_service
from app.services import challenge, otp, payment_qr
from app.views.signing import renew_session, sign_in, sign_out_answer

CABINET_HOME = "/cabinet/"
BUSINESS_HOME = "/business/"
FLOW_KEY = "auth_flow"

CONTACT_KINDS = [("phone", "По номеру телефона"), ("email", "По электронной почте")]


class SignInForm(FlaskForm):
    method = RadioField("Способ входа", choices=CONTACT_KINDS, default="phone")
    login = StringField("Телефон или e-mail", validators=[DataRequired("Введите логин.")])
    password = PasswordField("Пароль", validators=[DataRequired("Введите пароль.")])
    remember = BooleanField("Запомнить меня")


class ContactForm(FlaskForm):
    method = RadioField("Способ", choices=CONTACT_KINDS, default="phone")
    contact = StringField("Телефон или e-mail", validators=[DataRequired("Укажите контакт.")])


class CodeForm(FlaskForm):
    code = StringField("Код из сообщения",
                       validators=[DataRequired("Введите код."), Length(max=12)])


class RegisterConfirmForm(CodeForm):
    password = PasswordField("Пароль", validators=[DataRequired("Придумайте пароль.")])
    password_again = PasswordField("Пароль ещё раз",
                                   validators=[DataRequired("Повторите пароль.")])
    consent = BooleanField("Я ознакомился и даю согласие на обработку персональных данных")


class NewPasswordForm(FlaskForm):
    password = PasswordField("Новый пароль", validators=[DataRequired("Придумайте пароль.")])
    password_again = PasswordField("Новый пароль ещё раз",
                                   validators=[DataRequired("Повторите пароль.")])


class BusinessSignInForm(FlaskForm):
    login = StringField("Логин", validators=[DataRequired("Введите логин.")])
    password = PasswordField("Пароль", validators=[DataRequired("Введите пароль.")])
    branch = SelectField("Филиал", coerce=int, validate_choice=False)


def _ip() -> str | None:
    return request.remote_addr


def _flow(purpose: str) -> auth_service.Contact | None:
    data = session.get(FLOW_KEY)
    if not data or data.get("purpose") != purpose:
        return None
    return auth_service.Contact(data["kind"], data["value"])


def _start_flow(purpose: str, contact: auth_service.Contact) -> None:
    session[FLOW_KEY] = {"purpose": purpose, "kind": contact.kind, "value": contact.value}


def _authenticate(login: str, password: str, admits,
                  failure: str = "Неверный логин или пароль."):
    """Check a password through the security manager (throttled, audited, and with the «not a
    robot» proof the form carries); ``admits`` says which users this entrance lets in.
    Returns the user, or None and why (app.services.signin_guard.Refusal) when more than a
    wrong password."""
    g.signin_check = admits
    g.signin_proof = request.form.get(challenge.FIELD)
    user = current_app.appbuilder.sm.auth_user_db(login, password)
    refusal = None
    if user is None:
        refusal = g.pop("signin_refusal", None)
        flash(refusal.message if refusal and refusal.message else failure, "danger")
    return user, refusal


def _signin_page(view, template: str, refusal, **context):
    """A sign-in form, with the «not a robot» check the next attempt needs; a hard limit's
    refusal is a 429 with Retry-After."""
    page = view.render_template(template, refused=refusal is not None,
                                challenge=refusal.challenge if refusal else None, **context)
    if refusal is not None and refusal.retry_after:
        return page, 429, {"Retry-After": str(refusal.retry_after)}
    return page


class ResidentAuthView(BaseView):
    """Sign-in, registration and recovery for residents (физические лица)."""

    route_base = "/auth"
    default_view = "signin"

    @expose("/", methods=["GET", "POST"])
    def signin(self):
        if current_user.is_authenticated:
            return redirect(CABINET_HOME)
        form = SignInForm()
        refusal = None
        if form.validate_on_submit():
            user, refusal = _authenticate(form.login.data, form.password.data,
                                          lambda u: u.kind == "resident")
            if user is not None:
                sign_in(user, remember=bool(form.remember.data))
                return redirect(CABINET_HOME)
        return _signin_page(self, "auth/signin.html", refusal, form=form,
                            title="Вход в личный кабинет")

    @expose("/register", methods=["GET", "POST"])
    def register(self):
        form = ContactForm()
        if form.validate_on_submit():
            try:
                contact = auth_service.parse_contact(form.method.data, form.contact.data)
                auth_service.request_registration_code(db.session, contact, _ip())
            except (auth_service.AuthError, otp.OtpError, DeliveryError) as exc:
                flash(str(exc), "danger")
            else:
                _start_flow("register", contact)
                flash(f"Мы отправили код на {contact.masked}.", "info")
                return redirect(url_for(".register_confirm"))
        return self.render_template("auth/contact.html", form=form,
                                    title="Регистрация в личном кабинете",
                                    lead="Укажите номер мобильного телефона или адрес "
                                         "электронной почты: он станет вашим логином.",
                                    submit="Получить код", step=1)

    @expose("/register/confirm", methods=["GET", "POST"])
    def register_confirm(self):
        contact = _flow("register")
        if contact is None:
            return redirect(url_for(".register"))
        form = RegisterConfirmForm()
        if form.validate_on_submit():
            try:
                user = auth_service.complete_registration(
                    db.session, self.appbuilder.sm, contact, form.code.data,
                    form.password.data, form.password_again.data, bool(form.consent.data),
                    _ip(),
                )
            except (auth_service.AuthError, otp.OtpError) as exc:
                flash(str(exc), "danger")
            else:
                session.pop(FLOW_KEY, None)
                sign_in(user)
                flash("Регистрация завершена. Добро пожаловать!", "success")
                return redirect(CABINET_HOME)
        return self.render_template("auth/register_confirm.html", form=form, contact=contact,
                                    title="Регистрация в личном кабинете")

    @expose("/resend", methods=["POST"])
    def resend(self):
        data = session.get(FLOW_KEY) or {}
        contact = _flow(data.get("purpose", ""))
        if contact is None:
            return redirect(url_for(".signin"))
        send = {"register": auth_service.request_registration_code,
                "recover": auth_service.request_recovery_code}[data["purpose"]]
        try:
            send(db.session, contact, _ip())
            flash(f"Новый код отправлен на {contact.masked}.", "info")
        except (otp.OtpError, DeliveryError) as exc:
            flash(str(exc), "danger")
        target = ".register_confirm" if data["purpose"] == "register" else ".recover_confirm"
        return redirect(url_for(target))

    @expose("/recover", methods=["GET", "POST"])
    def recover(self):
        form = ContactForm()
        if form.validate_on_submit():
            try:
                contact = auth_service.parse_contact(form.method.data, form.contact.data)
                auth_service.request_recovery_code(db.session, contact, _ip())
            except (auth_service.AuthError, otp.OtpError, DeliveryError) as exc:
                flash(str(exc), "danger")
            else:
                _start_flow("recover", contact)
                flash(f"Если {contact.masked} указан в личном кабинете, на него придёт код.",
                      "info")
                return redirect(url_for(".recover_confirm"))
        return self.render_template("auth/contact.html", form=form,
                                    title="Восстановление пароля",
                                    lead="Укажите телефон или e-mail, которые вы указали при "
                                         "регистрации. Мы пришлём код для входа.",
                                    submit="Получить код", step=1)

    @expose("/recover/confirm", methods=["GET", "POST"])
    def recover_confirm(self):
        contact = _flow("recover")
        if contact is None:
            return redirect(url_for(".recover"))
        form = CodeForm()
        if form.validate_on_submit():
            try:
                user = auth_service.complete_recovery(db.session, contact, form.code.data,
                                                      _ip())
            except otp.OtpError as exc:
                flash(str(exc), "danger")
            else:
                session.pop(FLOW_KEY, None)
                sign_in(user)
                return redirect(url_for(".new_password"))
        return self.render_template("auth/code.html", form=form, contact=contact,
                                    title="Восстановление пароля")

    @expose("/password", methods=["GET", "POST"])
    def new_password(self):
        if not current_user.is_authenticated:
            return redirect(url_for(".signin"))
        form = NewPasswordForm()
        if form.validate_on_submit():
            try:
                auth_service.set_password(db.session, current_user, form.password.data,
                                          form.password_again.data, _ip())
            except auth_service.AuthError as exc:
                flash(str(exc), "danger")
            else:
                renew_session(current_user._get_current_object())
                flash("Новый пароль сохранён.", "success")
                return redirect(BUSINESS_HOME if current_user.kind == "business"
                                else CABINET_HOME)
        return self.render_template("auth/new_password.html", form=form,
                                    title="Установите новый пароль")

    @expose("/consent")
    def consent(self):
        return self.render_template("auth/consent.html",
                                    title="Согласие на обработку персональных данных",
                                    version=auth_service.CONSENT_VERSION)

    @expose("/logout", methods=["GET", "POST"])
    def logout(self):
        return sign_out_answer(self, url_for(".signin"))


def app_download_qr(url: str) -> Markup:
    """The QR code of the mobile app's download page as inline SVG: no extra request, and
    sharp at any zoom."""
    svg = payment_qr.qr_code(url).svg_inline(
        scale=4, border=2, title="QR-код страницы загрузки мобильного приложения",
        svgclass="app-qr-code")
    return Markup(svg)


class BusinessAuthView(BaseView):
    """Sign-in for organizations: login, password and their branch (филиал)."""

    route_base = "/business"
    default_view = "signin"

    @expose("/login", methods=["GET", "POST"])
    def signin(self):
        form = BusinessSignInForm()
        form.branch.choices = [(0, "— выберите филиал —")] + [
            (b.id, b.name) for b in db.session.execute(
                select(Branch).order_by(Branch.name)).scalars()
        ]
        refusal = None
        if form.validate_on_submit():
            if not form.branch.data:
                flash("Выберите филиал, в котором обслуживается организация.", "danger")
            else:
                branch_id = form.branch.data
                user, refusal = _authenticate(
                    form.login.data, form.password.data,
                    lambda u: u.kind == "business" and auth_service.serves_branch(u, branch_id),
                    failure="Неверный логин, пароль или филиал.",
                )
                if user is not None:
                    sign_in(user)
                    if user.must_change_password:
                        return redirect(url_for("ResidentAuthView.new_password"))
                    return redirect(BUSINESS_HOME)
        app_url = current_app.config["MOBILE_APP_URL"]
        return _signin_page(self, "auth/business_signin.html", refusal, form=form,
                            app_url=app_url, app_qr=app_download_qr(app_url),
                            title="Вход для юридических лиц и ИП")

    @expose("/logout", methods=["GET", "POST"])
    def logout(self):
        return sign_out_answer(self, url_for(".signin"))


#: Endpoints a user who must change the password may still reach.
PASSWORD_CHANGE_ALLOWED = {"ResidentAuthView.new_password", "ResidentAuthView.logout",
                           "BusinessAuthView.logout", "StaffAuthDBView.logout", "static",
                           "appbuilder.static"}
#: What signing out erases in the browser: the app's saved pages and bill PDFs, its queue of
#: readings, and every other storage of the portal's origin (the service worker included).
CLEAR_SITE_DATA = '"cache", "storage"'


def require_password_change():
    """Until a user who signed in by a recovery code (or with issued credentials) sets a
    password, every other page sends them to do so."""
    if (current_user.is_authenticated and getattr(current_user, "must_change_password", False)
            and request.endpoint not in PASSWORD_CHANGE_ALLOWED):
        return redirect(url_for("ResidentAuthView.new_password"))
    return None


def clear_site_data(response):
    """Every sign-out (a POST to residents' /auth/logout, organizations' /business/logout, the
    back office's /logout/) tells the browser to forget what the app kept for the user on this
    device, so that the next person using it sees none of it. Not the page a GET shows: the
    user is still signed in there, and a refused POST signed no one out."""
    if (request.method == "POST" and (request.endpoint or "").endswith(".logout")
            and response.status_code < 400):
        response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


def register(appbuilder) -> None:
    appbuilder.add_view_no_menu(ResidentAuthView)
    appbuilder.add_view_no_menu(BusinessAuthView)
    current_app.before_request(require_password_change)
    current_app.after_request(clear_site_data)
