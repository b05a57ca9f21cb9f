"""The wording of event notices in the back office: staff read and edit each notice's Jinja
templates (subject, text, HTML, SMS) and look at it filled with sample values. A wording that
does not render is refused with the reason, and nothing is saved."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from wtforms import ValidationError

from app import models as m
from app.extensions import db
from app.services import audit, notice_wordings
from app.views.admin_common import RowRefused, labels
from app.views.admin_journal import AUDIT_ACTIONS, AUDIT_OBJECTS
from app.views.base import DirectoryModelView, current_user_id, now

AUDIT_ACTIONS.update({
    "notice_template.updated": "Изменён шаблон уведомления",
    "notice_template.reset": "Шаблон уведомления возвращён к исходному",
})
AUDIT_OBJECTS.update({"notice_template": "Шаблон уведомления"})

#: Form field -> the part of the wording it holds.
FIELD_PARTS = {"subject": "subject", "text_body": "text", "html_body": "html", "sms_body": "sms"}
SYNTAX_HELP = ("Шаблон Jinja: подстановки {{ имя }}, условия {% if ... %}...{% endif %}, "
               "списки {% for ... %}...{% endfor %}. Какие подстановки есть у уведомления — "
               "на странице «Просмотр».")


def _renders(part: str):
    """A form check: the part renders with the notice's sample values."""

    def check(form, field):
        try:
            template = db.session.get(m.NoticeTemplate, int(request.view_args.get("pk")))
        except (TypeError, ValueError):
            return
        if template is None:
            return
        try:
            notice_wordings.check_part(template.code, part, field.data)
        except notice_wordings.NoticeTemplateError as exc:
            # FAB shows form errors through gettext, which reads "%" as a format sign.
            raise ValidationError(str(exc).replace("%", "%%")) from None

    return check


class NoticeTemplateView(DirectoryModelView):
    """One row per notice; staff edit the wording, never the code or who gets it."""

    datamodel = SQLAInterface(m.NoticeTemplate)
    base_permissions = ["can_list", "can_show", "can_edit"]
    method_permission_name = {"reset": "edit"}
    list_title, show_title = "Шаблоны уведомлений", "Шаблон уведомления"
    add_title, edit_title = "Новый шаблон уведомления", "Изменение шаблона уведомления"
    label_columns = labels(
        code="Код", title="Уведомление", subject="Тема письма", text_body="Текст письма",
        html_body="HTML-версия письма", sms_body="Текст SMS", updated_at="Изменён",
        updated_by="Кем изменён")
    list_columns = ["title", "subject", "updated_at", "updated_by"]
    show_columns = ["title", "code", "subject", "text_body", "html_body", "sms_body",
                    "updated_at", "updated_by"]
    edit_columns = ["subject", "text_body", "html_body", "sms_body"]
    add_columns = edit_columns
    search_columns = ["title", "subject"]
    order_columns = ["title", "updated_at"]
    base_order = ("id", "asc")
    description_columns = {
        "subject": SYNTAX_HELP,
        "text_body": "Текстовая часть письма. " + SYNTAX_HELP,
        "html_body": "HTML-часть письма (значения подстановок экранируются сами). "
                     "Шапку, контакты и ссылку на настройки уведомлений портал добавит сам.",
        "sms_body": "Короткий текст SMS; пусто — уведомление уходит только по электронной "
                    "почте.",
        "updated_at": "Пусто — действует исходный текст портала",
    }
    validators_columns = {field: [_renders(part)] for field, part in FIELD_PARTS.items()}
    show_template = "notices/show.html"

    @expose("/list/")
    @has_access
    def list(self):
        notice_wordings.ensure_templates(db.session)
        return super().list()

    def clean_row(self, item):
        item.sms_body = (item.sms_body or "").strip() or None
        try:
            notice_wordings.check_template(item.code, item.subject, item.text_body,
                                           item.html_body, item.sms_body)
        except notice_wordings.NoticeTemplateError as exc:
            raise RowRefused(str(exc)) from None
        item.updated_at, item.updated_by_id = now(), current_user_id()

    def post_update(self, item):
        audit.record(db.session, "notice_template.updated", actor_id=current_user_id(),
                     object_type="notice_template", object_id=item.code,
                     ip=request.remote_addr)

    @expose("/preview/<int:pk>")
    @has_access
    @permission_name("show")
    def preview(self, pk: int):
        """The notice as a customer will get it, filled with sample values."""
        template = self.datamodel.get(pk, self._base_filters)
        if template is None:
            abort(404)
        letter = notice_wordings.preview(db.session, template.code)
        return self.render_template(
            "notices/preview.html", notice=template, letter=letter,
            placeholders=notice_wordings.placeholders(template.code),
            title=f"Просмотр уведомления «{template.title}»")

    @action("reset", "Вернуть исходный текст",
            "Вернуть исходный текст портала? Изменения сотрудников будут потеряны.",
            "fa-undo", multiple=False)
    def reset(self, items):
        for template in items if isinstance(items, list) else [items]:
            if template is None:
                continue
            notice_wordings.reset_template(db.session, template)
            audit.record(db.session, "notice_template.reset", actor_id=current_user_id(),
                         object_type="notice_template", object_id=template.code,
                         ip=request.remote_addr)
            flash(f"Шаблон «{template.title}» возвращён к исходному тексту.", "success")
        return redirect(request.referrer or url_for(".list"))
