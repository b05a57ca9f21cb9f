"""The resident's profile (/cabinet/profile/): name, phone and e-mail (confirmed by a code sent
to the new contact), password, notices (by e-mail, SMS and push, with the devices that get
push: app/views/push.py), the messenger bot's block (a one-time link to link a chat, and
unlinking: app.services.messenger_links), the download of one's personal data, the withdrawal
of the consent and where the resident is signed in (app/views/sessions.py). Views parse forms
and call app.services.profile, app.services.push and app.services.sessions."""
from __future__ import annotations

import datetime as dt
import json

from flask import Response, abort, flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models import NoticeTopic
from app.plugins import DeliveryError
from app.services import messenger_links, otp, sessions
from app.services import profile as profile_service
from app.services.auth import AuthError, Contact
from app.services.throttle import Throttled
from app.views.cabinet import entrance
from app.views.push import page_context, urls_for
from app.views.sessions import page_context as sign_ins_context
from app.views.signing import renew_session

FLOW_KEY = "profile_contact_change"
CONTACT_LABELS = {"phone": "Номер мобильного телефона", "email": "Адрес электронной почты"}
CONTACT_TITLES = {"phone": "Новый номер телефона", "email": "Новый адрес электронной почты"}
CHANNEL_NAMES = {"email": "e-mail", "sms": "СМС", "push": "push-уведомления"}


class NameForm(FlaskForm):
    last_name = StringField("Фамилия", validators=[DataRequired("Укажите фамилию."),
                                                   Length(max=64)])
    first_name = StringField("Имя", validators=[DataRequired("Укажите имя."), Length(max=64)])


class NewContactForm(FlaskForm):
    contact = StringField("Новый контакт", validators=[DataRequired("Укажите новый контакт.")])


class CodeForm(FlaskForm):
    code = StringField("Код из сообщения",
                       validators=[DataRequired("Введите код."), Length(max=12)])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Текущий пароль",
                            validators=[DataRequired("Введите текущий пароль.")])
    password = PasswordField("Новый пароль", validators=[DataRequired("Придумайте пароль.")])
    password_again = PasswordField("Новый пароль ещё раз",
                                   validators=[DataRequired("Повторите пароль.")])


class NotificationsForm(FlaskForm):
    paperless = BooleanField("Получать квитанции только в электронном виде (без бумажных)")
    mailing = BooleanField("Получать новости и предложения НЭСК")


for _topic in NoticeTopic.values():
    for _channel in profile_service.CHANNELS:
        setattr(NotificationsForm, profile_service.notice_field(_topic, _channel),
                BooleanField(f"{NoticeTopic.label(_topic)}: {CHANNEL_NAMES[_channel]}"))


for _topic in NoticeTopic.values():  # to the chats linked to the portal's bot
    setattr(NotificationsForm, messenger_links.chat_field(_topic),
            BooleanField(NoticeTopic.label(_topic)))


class WithdrawForm(FlaskForm):
    confirm = BooleanField("Я понимаю, что личный кабинет будет закрыт и войти в него "
                           "больше не получится")


def _ip() -> str | None:
    return request.remote_addr


def _notice_settings() -> dict[str, bool]:
    """Every channel of every topic, paperless, mailing."""
    return profile_service.notification_settings(current_user)


def _flow() -> Contact | None:
    data = session.get(FLOW_KEY)
    if not data or data.get("user_id") != current_user.id:
        return None
    return Contact(data["kind"], data["value"])


class ProfileView(BaseView):
    """Profile and notices of a signed-in resident."""

    route_base = "/cabinet/profile"
    default_view = "index"

    def _page(self, template: str, title: str, **context):
        return self.render_template(f"cabinet/{template}", title=title, user=current_user,
                                    **context)

    @expose("/")
    @entrance("ResidentAuthView.signin")
    @has_access
    def index(self):
        return self._page("profile.html", "Профиль", settings=_notice_settings(),
                          topics=NoticeTopic.labels,
                          messengers=messenger_links.messengers(db.session, current_user),
                          **sign_ins_context("ResidentSessionsView"))

    @expose("/name", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def name(self):
        form = NameForm(obj=current_user)
        if form.validate_on_submit():
            try:
                profile_service.update_name(db.session, current_user, form.first_name.data,
                                            form.last_name.data, _ip())
            except AuthError as exc:
                flash(str(exc), "danger")
            else:
                flash("Имя сохранено.", "success")
                return redirect(url_for(".index"))
        return self._page("profile_name.html", "Фамилия и имя", form=form)

    @expose("/contact/<kind>", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def contact(self, kind: str):
        if kind not in CONTACT_LABELS:
            return ("Не найдено", 404)
        form = NewContactForm()
        form.contact.label.text = CONTACT_TITLES[kind]
        if form.validate_on_submit():
            try:
                contact = profile_service.start_contact_change(
                    db.session, current_user, kind, form.contact.data, _ip())
            except (AuthError, otp.OtpError, DeliveryError) as exc:
                flash(str(exc), "danger")
            else:
                session[FLOW_KEY] = {"user_id": current_user.id, "kind": contact.kind,
                                     "value": contact.value}
                flash(f"Мы отправили код на {contact.masked}.", "info")
                return redirect(url_for(".contact_confirm"))
        return self._page("profile_contact.html", CONTACT_LABELS[kind], form=form, kind=kind,
                          current=profile_service.current_contact(current_user, kind))

    @expose("/contact/confirm", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def contact_confirm(self):
        contact = _flow()
        if contact is None:
            return redirect(url_for(".index"))
        form = CodeForm()
        if form.validate_on_submit():
            try:
                profile_service.confirm_contact_change(db.session, current_user, contact,
                                                       form.code.data, _ip())
            except profile_service.ProfileError as exc:
                session.pop(FLOW_KEY, None)
                flash(str(exc), "danger")
                return redirect(url_for(".index"))
            except otp.OtpError as exc:
                flash(str(exc), "danger")
            else:
                session.pop(FLOW_KEY, None)
                flash("Телефон изменён." if contact.kind == "phone"
                      else "Адрес электронной почты изменён.", "success")
                return redirect(url_for(".index"))
        return self._page("profile_code.html", "Подтверждение контакта", form=form,
                          contact=contact)

    @expose("/contact/resend", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def contact_resend(self):
        contact = _flow()
        if contact is None:
            return redirect(url_for(".index"))
        try:
            profile_service.start_contact_change(db.session, current_user, contact.kind,
                                                 contact.value, _ip())
            flash(f"Новый код отправлен на {contact.masked}.", "info")
        except (AuthError, otp.OtpError, DeliveryError) as exc:
            flash(str(exc), "danger")
        return redirect(url_for(".contact_confirm"))

    @expose("/password", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def password(self):
        form = ChangePasswordForm()
        if form.validate_on_submit():
            try:
                profile_service.change_password(db.session, current_user, form.current.data,
                                                form.password.data, form.password_again.data,
                                                _ip())
            except (AuthError, Throttled) as exc:
                flash(str(exc), "danger")
            else:
                renew_session(current_user._get_current_object())
                flash("Новый пароль сохранён. Мы сообщили об этом на ваши телефон и e-mail.",
                      "success")
                return redirect(url_for(".index"))
        return self._page("profile_password.html", "Смена пароля", form=form)

    @expose("/notifications", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def notifications(self):
        chats = messenger_links.linked(db.session, current_user)
        form = NotificationsForm(data={**_notice_settings(),
                                       **messenger_links.chat_settings(chats)})
        if form.validate_on_submit():
            messenger_links.set_chat_settings(db.session, chats, form.data)
            profile_service.set_notifications(db.session, current_user, form.data, _ip())
            flash("Настройки уведомлений сохранены.", "success")
            return redirect(url_for(".index"))
        return self._page("profile_notifications.html", "Уведомления", form=form,
                          topics=NoticeTopic.labels, chats=[c.title for c in chats],
                          **page_context("ResidentPushView.off", urls_for("ResidentPushView")))

    @expose("/messenger/<name>/link", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def messenger_link(self, name: str):
        """A one-time link to the bot (shown once, with its QR code): the token is not kept."""
        if messenger_links.transport(name) is None:
            abort(404)
        try:
            issued = messenger_links.issue_link(db.session, current_user, name, _ip())
        except (messenger_links.LinkError, DeliveryError) as exc:
            flash(str(exc), "danger")
            return redirect(url_for(".index"))
        return self._page("profile_messenger.html", "Подключение бота", link=issued)

    @expose("/messenger/<name>/unlink", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def messenger_unlink(self, name: str):
        if messenger_links.unlink(db.session, current_user.id, name, by="profile", ip=_ip()):
            flash("Бот отключён: он больше не отвечает в чате и не присылает уведомления.",
                  "success")
        return redirect(url_for(".index"))

    @expose("/export")
    @entrance("ResidentAuthView.signin")
    @has_access
    def export(self):
        data = profile_service.personal_data_export(db.session, current_user, _ip())
        body = json.dumps(data, ensure_ascii=False, indent=2)
        filename = f"personal-data-{dt.date.today():%Y-%m-%d}.json"
        return Response(body, mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        })

    @expose("/withdraw", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def withdraw(self):
        form = WithdrawForm()
        if form.validate_on_submit():
            if not form.confirm.data:
                flash("Подтвердите, что понимаете последствия: отметьте флажок.", "danger")
            else:
                user_id = current_user.id
                profile_service.withdraw_consent(db.session, current_user, _ip())
                sessions.end_all(db.session, user_id)
                logout_user()
                session.pop(FLOW_KEY, None)
                flash(profile_service.WITHDRAWN, "info")
                return redirect(url_for("ResidentAuthView.signin"))
        return self._page("profile_withdraw.html", "Отзыв согласия", form=form)
