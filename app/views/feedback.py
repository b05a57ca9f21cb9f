"""Feedback (обратная связь), one view per audience: the public form (/feedback/, no sign-in),
the resident's messages about their bound accounts (/cabinet/feedback/), and the staff inbox
in the back office (take into work, reply, close). The rules are app.services.feedback; the
staff actions pass the operator's branch scope to it, so a message of another branch is 404
whichever way its id arrives (the show page, a list action, a URL)."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_login import current_user
from wtforms.validators import Email, Optional

from app import models as m
from app.extensions import db
from app.services import feedback as service
from app.services.phones import normalize_phone
from app.services.throttle import Throttled
from app.views.access import current_branch_scope
from app.views.admin_common import RowRefused, labels
from app.views.admin_journal import AUDIT_ACTIONS, AUDIT_OBJECTS
from app.views.base import CAN_KEEP, PortalModelView, current_user_id
from app.views.cabinet import entrance

AUDIT_ACTIONS.update({
    "feedback.created": "Новое обращение",
    "feedback.assigned": "Обращение взято в работу",
    "feedback.replied": "Ответ на обращение",
    "feedback.closed": "Обращение закрыто",
})
AUDIT_OBJECTS["feedback"] = "Обращение"

#: The public form's fields; "website" is the honeypot, hidden from people.
PUBLIC_FIELDS = ("name", "email", "phone", "branch", "topic", "message", "consent")
RESIDENT_FIELDS = ("account", "topic", "message")
HONEYPOT = "website"


def _text_context() -> dict:
    return {"topics": service.COMMON_TOPICS, "topic_max": service.TOPIC_MAX,
            "message_max": service.MESSAGE_MAX, "status_label": service.status_label}


class PublicFeedbackView(BaseView):
    """The form for anyone: name, e-mail, branch, topic and text. A signed-in resident is
    sent to the cabinet's form, an organization's user to theirs."""

    route_base = "/feedback"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    def index(self):
        if current_user.is_authenticated and current_user.kind == "resident":
            return redirect(url_for("ResidentFeedbackView.index"))
        if current_user.is_authenticated and current_user.kind == "business":
            return redirect(url_for("BusinessView.feedback"))
        form = {key: request.form.get(key, "") for key in PUBLIC_FIELDS}
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            try:
                service.create_public(
                    db.session, name=form["name"], email=form["email"], phone=form["phone"],
                    branch=form["branch"], topic=form["topic"], message=form["message"],
                    consent=bool(form["consent"]), trap=request.form.get(HONEYPOT),
                    ip=request.remote_addr)
            except Throttled as exc:
                flash(str(exc), "danger")
                status = 429
            except service.FeedbackError as exc:
                errors = exc.errors
                flash("Обращение не отправлено: исправьте отмеченные поля.", "danger")
                status = 400
            else:
                # The same answer when the honeypot caught a robot: it learns nothing.
                flash("Спасибо! Обращение отправлено в филиал. Ответ придёт на вашу "
                      "электронную почту.", "success")
                return redirect(url_for(".index"))
        return self.render_template(
            "feedback/public.html", form=form, errors=errors, honeypot=HONEYPOT,
            branches=service.branches(db.session), title="Обратная связь",
            **_text_context()), status


class ResidentFeedbackView(BaseView):
    """The resident's messages about their bound accounts, and the branches' answers."""

    route_base = "/cabinet/feedback"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def index(self):
        form = {"account": request.args.get("account", ""), "topic": "", "message": ""}
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            form = {key: request.form.get(key, "") for key in RESIDENT_FIELDS}
            try:
                sent = service.create_for_resident(
                    db.session, user_id=current_user.id, account=form["account"],
                    topic=form["topic"], message=form["message"], ip=request.remote_addr)
            except Throttled as exc:
                flash(str(exc), "danger")
                status = 429
            except service.FeedbackError as exc:
                errors = exc.errors
                flash("Обращение не отправлено: исправьте отмеченные поля.", "danger")
                status = 400
            else:
                flash(f"Обращение № {sent.id} отправлено в {sent.branch.name}. Ответ появится "
                      "на этой странице.", "success")
                return redirect(url_for(".index"))
        return self.render_template(
            "feedback/resident.html", form=form, errors=errors,
            choices=service.author_accounts(db.session, current_user.id),
            messages=service.history(db.session, [current_user.id]),
            title="Обращения", **_text_context()), status


# Back office ---------------------------------------------------------------------------------


class FeedbackView(PortalModelView):
    """The branch's inbox: customers' messages, kept as correspondence. Staff take a message
    into work, answer it once (the answer is e-mailed to the author and shows in their
    cabinet), and close it; the stock edit form is not offered."""

    datamodel = SQLAInterface(m.Feedback)
    base_permissions = CAN_KEEP
    list_title, show_title = "Обращения", "Обращение"
    add_title, edit_title = "Новое обращение", "Ответ на обращение"
    label_columns = labels(
        topic="Тема", message="Текст обращения", user="Учётная запись автора", author="Автор",
        author_name="Имя автора", author_email="Электронная почта автора",
        author_phone="Телефон автора", reply="Ответ", created_at="Дата обращения",
        assigned_to="Исполнитель", assigned_at="Взято в работу", answered_at="Дата ответа",
        answered_by="Ответил", reply_sent_at="Ответ отправлен автору", closed_at="Закрыто")
    list_columns = ["created_at", "topic", "author", "branch", "status", "assigned_to"]
    show_fieldsets = [
        ("Обращение", {"fields": ["topic", "message", "author", "author_email", "author_phone",
                                  "user", "account", "branch", "created_at"]}),
        ("Работа с обращением", {"fields": ["status", "assigned_to", "assigned_at", "reply",
                                            "answered_by", "answered_at", "reply_sent_at",
                                            "closed_at"]}),
    ]
    add_columns = ["topic", "message", "author_name", "author_email", "author_phone",
                   "account", "branch"]
    edit_columns = ["topic", "message"]
    search_columns = ["topic", "user", "author_name", "author_email", "account", "branch",
                      "status", "assigned_to", "created_at"]
    order_columns = ["created_at", "topic", "status"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.FeedbackStatus.labels}
    validators_columns = {"author_email": [Optional(), Email(message=service.EMAIL_BAD)]}
    description_columns = {
        "author_name": "Для обращения по телефону или на приёме",
        "author_email": "Сюда уйдёт ответ, если автор не пользуется личным кабинетом",
        "author_phone": "Например, +7 918 123-45-67",
    }

    #: Handling a message changes it: whoever may edit may do it.
    method_permission_name = {"assign": "edit", "reply": "edit", "reply_form": "edit",
                              "close": "edit"}

    def _init_properties(self):
        super()._init_properties()
        # "author" is the user's name when there is a user: load users with the rows.
        self.datamodel.eager_relations = (*self.datamodel.eager_relations, "user")

    def clean_row(self, item):
        if item.author_phone:
            phone = normalize_phone(item.author_phone)
            if phone is None:
                raise RowRefused(service.PHONE_BAD)
            item.author_phone = phone
        item.author_email = (item.author_email or "").strip().lower() or None

    def pre_add(self, item):
        super().pre_add(item)
        item.status = "new"

    def _scope(self) -> int | None:
        return current_branch_scope()

    def _message(self, pk) -> m.Feedback:
        try:
            return service.for_staff(db.session, int(pk), self._scope())
        except (ValueError, service.FeedbackNotFound):
            abort(404)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """No free editing of correspondence: the way to change a message is to answer it."""
        row = self._message(pk)
        return redirect(url_for(".reply_form", pk=row.id))

    @expose("/reply/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("edit")
    def reply_form(self, pk):
        row = self._message(pk)
        text, error = request.form.get("reply", ""), None
        if request.method == "POST":
            try:
                sent = service.reply(
                    db.session, row.id, text, staff_id=current_user_id(), scope=self._scope(),
                    ip=request.remote_addr,
                    cabinet_url=self._cabinet_url(row))
            except service.FeedbackError as exc:
                error = exc.errors["reply"]
            except service.HandlingRefused as exc:
                flash(str(exc), "danger")
                return redirect(url_for(".show", pk=row.id))
            else:
                if sent:
                    flash("Ответ сохранён и отправлен автору.", "success")
                else:
                    flash("Ответ сохранён, но отправить его автору не удалось: автор увидит "
                          "ответ в личном кабинете, если пользуется им; иначе свяжитесь с ним "
                          "сами.", "warning")
                return redirect(url_for(".show", pk=row.id))
        return self.render_template(
            "feedback/staff_reply.html", row=row, text=text, error=error,
            contact=service.reply_contact(row), message_max=service.MESSAGE_MAX,
            title=f"Ответ на обращение № {row.id}"), 400 if error else 200

    @staticmethod
    def _cabinet_url(row: m.Feedback) -> str | None:
        if row.user is None:
            return None
        endpoint = ("BusinessView.feedback" if row.user.kind == "business"
                    else "ResidentFeedbackView.index")
        if endpoint not in current_app.view_functions:
            return None
        return url_for(endpoint, _external=True)

    @action("assign", "Взять в работу", "Назначить выбранные обращения на себя?", "fa-user",
            multiple=True)
    def assign(self, items):
        rows = self._in_scope(items)
        for row in rows:
            self._handle(service.assign, row)
        if len(rows) == 1:
            flash(f"Обращение № {rows[0].id} взято в работу.", "success")
        return redirect(request.referrer or url_for(".list"))

    @action("reply", "Ответить", None, "fa-reply", multiple=False)
    def reply(self, item):
        row, = self._in_scope(item)
        return redirect(url_for(".reply_form", pk=row.id))

    @action("close", "Закрыть", "Закрыть выбранные обращения?", "fa-check", multiple=True)
    def close(self, items):
        rows = self._in_scope(items)
        for row in rows:
            self._handle(service.close, row)
        if len(rows) == 1:
            flash(f"Обращение № {rows[0].id} закрыто.", "success")
        return redirect(request.referrer or url_for(".list"))

    def _in_scope(self, items) -> list[m.Feedback]:
        """The chosen messages; 404 (nothing changed) if any is missing or of another branch.
        FAB's actions load rows by id without the list's filters: the scope is checked here."""
        rows = items if isinstance(items, list) else [items]
        if not rows or not service.all_in_scope(rows, self._scope()):
            abort(404)
        return rows

    def _handle(self, step, row: m.Feedback) -> None:
        try:
            step(db.session, row.id, staff_id=current_user_id(), scope=self._scope(),
                 ip=request.remote_addr)
        except service.HandlingRefused as exc:
            flash(f"Обращение № {row.id}: {exc}", "danger")
        except service.FeedbackNotFound:
            abort(404)
