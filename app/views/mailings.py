"""Mailings in the back office: staff compose a letter for a segment, look at it as a sample
recipient will see it, send it (delivery runs in Celery tasks), and watch its progress, pause,
resume or cancel it. Only a draft may be changed or deleted."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from wtforms.validators import NumberRange, Optional

from app import models as m
from app.extensions import db
from app.services import mailing_letters, mailings
from app.views.access import current_branch_scope
from app.views.admin_common import RowRefused, labels
from app.views.admin_journal import AUDIT_ACTIONS
from app.views.base import CAN_ALL, PortalModelView, current_user_id
from app.views.formats import local_today
from app.views.guards import FitsColumn
from app.views.jobs import progress_bar

AUDIT_ACTIONS.update({
    "mailing.queued": "Рассылка поставлена в очередь",
    "mailing.paused": "Рассылка приостановлена",
    "mailing.resumed": "Рассылка продолжена",
    "mailing.canceled": "Рассылка отменена",
    "mailing.unsubscribed": "Отписка от рассылок",
})

PLACEHOLDER_HELP = "Можно подставить: " + "; ".join(
    "{{ %s }} — %s" % item for item in mailing_letters.PLACEHOLDERS.items())


class MailingView(PortalModelView):
    datamodel = SQLAInterface(m.Mailing)
    base_permissions = CAN_ALL
    list_title, show_title = "Рассылки", "Рассылка"
    add_title, edit_title = "Новая рассылка", "Изменение рассылки"
    label_columns = labels(
        subject="Тема", body="Текст", branch="Филиал", segment="Получатели",
        tariff_group="Тарифная группа", min_debt="Задолженность более, руб.",
        without_reading="Без показаний за текущий месяц", percent="Ход отправки",
        total="Получателей", sent="Отправлено", failed="Не доставлено", created_by="Автор",
        created_at="Создана", queued_at="Поставлена в очередь", finished_at="Завершена")
    list_columns = ["created_at", "subject", "branch", "status", "percent", "total", "sent",
                    "failed"]
    show_fieldsets = [
        ("Рассылка", {"fields": ["subject", "body", "branch", "tariff_group", "min_debt",
                                 "without_reading", "segment"]}),
        ("Отправка", {"fields": ["status", "percent", "total", "sent", "failed", "created_by",
                                 "created_at", "queued_at", "finished_at"]}),
    ]
    add_columns = edit_columns = ["subject", "body", "branch", "tariff_group", "min_debt",
                                  "without_reading"]
    search_columns = ["subject", "branch", "status", "created_at"]
    order_columns = ["created_at", "subject", "status", "total", "sent", "failed"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.MailingStatus.labels}
    formatters_columns = {"percent": progress_bar}
    validators_columns = {"min_debt": [Optional(), FitsColumn(m.Mailing.min_debt),
                                       NumberRange(min=0, message="Сумма не может быть "
                                                                  "отрицательной.")]}
    description_columns = {
        "subject": "Тема письма; подстановки работают и здесь",
        "body": PLACEHOLDER_HELP + ". Пустая строка — новый абзац. Ссылку для отписки "
                "портал добавит сам.",
        "branch": "Пусто — по всем филиалам (может только администратор)",
        "tariff_group": "Пусто — любая",
        "min_debt": "Пусто — независимо от задолженности",
        "without_reading": "Только абонентам, которые ещё не передали показания в этом месяце",
        "segment": "Кому рассылка ушла — запоминается при отправке",
    }
    show_template = "mailings/show.html"

    #: Starting, pausing and stopping a mailing change it: staff who may edit may do them.
    method_permission_name = {"send": "edit", "pause": "edit", "resume": "edit",
                              "cancel": "edit"}

    def pre_add(self, item):
        super().pre_add(item)
        item.created_by_id = current_user_id()

    def clean_row(self, item):
        if item.id is not None:
            self._only_draft(item, "изменить")
        try:
            mailings.check_template(item.subject or "", item.body or "")
        except mailings.MailingError as exc:
            raise RowRefused(str(exc)) from None

    def pre_delete(self, item):
        super().pre_delete(item)
        self._only_draft(item, "удалить")

    @staticmethod
    def _only_draft(item, verb: str) -> None:
        if item.status != "draft":
            raise RowRefused(f"Рассылка уже запущена: {verb} можно только черновик.")

    @expose("/preview/<int:pk>")
    @has_access
    @permission_name("show")
    def preview(self, pk: int):
        """The letter as its first recipient will get it, and how many will get it (a look,
        so whoever may see the mailing may)."""
        mailing = self.datamodel.get(pk, self._base_filters)
        if mailing is None:
            abort(404)
        try:
            count, letter = mailings.preview(db.session, mailing, local_today().replace(day=1))
        except mailings.MailingError as exc:
            flash(str(exc), "danger")
            return redirect(url_for(".show", pk=pk))
        return self.render_template("mailings/preview.html", mailing=mailing, count=count,
                                    letter=letter, title=f"Просмотр рассылки «{mailing.subject}»")

    @action("send", "Отправить", "Отправить выбранные рассылки получателям?", "fa-paper-plane",
            multiple=False)
    def send(self, items):
        return self._each(items, self._send_one)

    @action("pause", "Приостановить", "Приостановить отправку?", "fa-pause", multiple=False)
    def pause(self, items):
        return self._each(items, lambda mailing: self._control(mailings.pause, mailing,
                                                               "Рассылка приостановлена."))

    @action("resume", "Продолжить", "Продолжить отправку?", "fa-play", multiple=False)
    def resume(self, items):
        return self._each(items, self._resume_one)

    @action("cancel", "Отменить", "Отменить рассылку? Неотправленные письма не уйдут.",
            "fa-ban", multiple=False)
    def cancel(self, items):
        return self._each(items, lambda mailing: self._control(mailings.cancel, mailing,
                                                               "Рассылка отменена."))

    def _each(self, items, do):
        for mailing in items if isinstance(items, list) else [items]:
            if mailing is not None:
                do(mailing)
        return redirect(request.referrer or url_for(".list"))

    def _send_one(self, mailing: m.Mailing) -> None:
        scope = current_branch_scope()
        if scope is not None and mailing.branch_id != scope:
            flash("Рассылка другого филиала: отправить её нельзя.", "danger")
            return
        try:
            total = mailings.queue(db.session, mailing.id, current_user_id(),
                                   local_today().replace(day=1), request.remote_addr)
        except mailings.MailingError as exc:
            flash(str(exc), "danger")
            return
        mailings.start_delivery(mailing.id, total)
        flash(f"Рассылка поставлена в очередь: получателей {total}.", "success")

    def _resume_one(self, mailing: m.Mailing) -> None:
        if self._control(mailings.resume, mailing, "Отправка продолжена."):
            mailings.start_delivery(mailing.id, mailing.total)

    @staticmethod
    def _control(change, mailing: m.Mailing, done: str) -> bool:
        try:
            change(db.session, mailing.id, current_user_id(), request.remote_addr)
        except mailings.MailingError as exc:
            flash(str(exc), "danger")
            return False
        flash(done, "success")
        return True
