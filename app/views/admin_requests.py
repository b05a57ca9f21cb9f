"""Back-office requests: applications for a supply contract and reconciliation acts."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from sqlalchemy import select

from app import models as m
from app.extensions import db
from app.services import acts, applications
from app.views.access import current_branch_scope
from app.views.acts import ActDocumentsMixin
from app.views.admin_common import RowRefused, labels
from app.views.admin_journal import AUDIT_ACTIONS, AUDIT_OBJECTS
from app.views.applications import attachment_response
from app.views.base import CAN_APPEND, CAN_KEEP, PortalModelView, current_user_id
from app.views.formats import local_today


class ContractApplicationView(PortalModelView):
    """Applications for a supply contract, reviewed by the branch: the status moves only by the
    buttons of the card (new -> in review -> approved or rejected with a reason, each change
    told to the applicant); an approved application gets its personal account opened and
    bound to the applicant. Rows are kept, not deleted: the scans belong to them."""

    datamodel = SQLAInterface(m.ContractApplication)
    base_permissions = CAN_KEEP
    list_title, show_title = "Заявки на договор", "Заявка на договор"
    add_title, edit_title = "Новая заявка на договор", "Изменение заявки"
    label_columns = labels(
        applicant_name="Заявитель", address="Адрес объекта", comment="Комментарий заявителя",
        staff_comment="Комментарий сотрудника (причина отказа)",
        user="Учётная запись заявителя", created_at="Дата подачи", updated_at="Изменена",
        kind="Вид заявки", cadastral_number="Кадастровый номер",
        account="Открытый лицевой счёт")
    list_columns = ["created_at", "applicant_name", "kind", "address", "branch", "status"]
    show_fieldsets = [
        ("Заявка", {"fields": ["kind", "applicant_name", "phone", "email", "address",
                               "cadastral_number", "comment", "user", "created_at"]}),
        ("Рассмотрение", {"fields": ["branch", "status", "staff_comment", "account",
                                     "updated_at"]}),
    ]
    add_columns = ["applicant_name", "phone", "email", "address", "cadastral_number",
                   "comment", "branch"]
    edit_columns = ["kind", "applicant_name", "phone", "email", "address", "cadastral_number",
                    "comment", "branch", "staff_comment"]
    search_columns = ["applicant_name", "phone", "email", "address", "cadastral_number",
                      "kind", "status", "branch", "created_at"]
    order_columns = ["created_at", "applicant_name", "address", "status"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.ApplicationStatus.labels, "kind": m.ApplicationKind.labels}
    description_columns = {
        "cadastral_number": "Например 23:43:0123456:789",
        "staff_comment": "Статус меняется кнопками в карточке заявки",
    }
    show_template = "portal/application_show.html"

    def _application(self, pk) -> m.ContractApplication:
        """The row within the user's branch scope, else 404."""
        application = self.datamodel.get(pk, self._base_filters)
        if application is None:
            abort(404)
        return application

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        widgets = self._show(pk)
        application = self._application(pk)
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, application=application,
            transitions=[(status, APPLICATION_ACTIONS[status])
                         for status in applications.allowed_transitions(application)])

    @expose("/status/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def change_status(self, pk: int):
        application = self._application(pk)
        try:
            applications.change_status(
                db.session, application.id, request.form.get("status", ""),
                actor_id=current_user_id(), reason=request.form.get("reason"),
                ip=request.remote_addr, branch_id=current_branch_scope())
        except applications.ApplicationError as error:
            flash(str(error), "danger")
        else:
            flash(f"Статус заявки: «{m.ApplicationStatus.label(application.status)}». "
                  "Заявителю отправлено уведомление.", "success")
        return redirect(url_for(".show", pk=pk))

    @expose("/files/<int:pk>/<int:file_id>")
    @has_access
    @permission_name("show")
    def download(self, pk: int, file_id: int):
        try:
            attachment = applications.attachment_of(self._application(pk), file_id)
        except applications.NotFound:
            abort(404)
        return attachment_response(attachment)

    @expose("/account/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("edit")
    def open_account(self, pk: int):
        """Open the personal account of an approved application and bind it to the
        applicant's cabinet."""
        application = self._application(pk)
        if application.status != "approved" or application.account_id is not None:
            flash("Лицевой счёт открывается один раз и только по одобренной заявке.", "danger")
            return redirect(url_for(".show", pk=pk))
        values = {"number": applications.suggest_account_number(db.session),
                  "holder_name": application.applicant_name, "locality_type": "urban",
                  "locality": application.branch.city, "tariff_group_id": ""}
        errors: dict[str, str] = {}
        if request.method == "POST":
            values = {name: request.form.get(name, "") for name in ACCOUNT_FIELDS}
            try:
                account = applications.open_account_for(
                    db.session, application.id, actor_id=current_user_id(),
                    ip=request.remote_addr, branch_id=current_branch_scope(), **values)
            except applications.ApplicationError as error:
                errors = error.errors
                if "" in errors:
                    flash(errors[""], "danger")
            else:
                bound = " и привязан к кабинету заявителя" if application.user_id else ""
                flash(f"Открыт лицевой счёт {account.number}{bound}.", "success")
                return redirect(url_for(".show", pk=pk))
        groups = db.session.execute(select(m.TariffGroup.id, m.TariffGroup.name)
                                    .order_by(m.TariffGroup.name)).all()
        return self.render_template(
            "portal/application_account.html", application=application, values=values,
            errors=errors, groups=groups, locality_types=m.LocalityType.labels,
            title="Открытие лицевого счёта по заявке")


#: The buttons that move an application: target status -> (button text, style).
APPLICATION_ACTIONS = {
    "in_review": ("Взять на рассмотрение", "btn-primary"),
    "approved": ("Одобрить", "btn-success"),
    "rejected": ("Отклонить", "btn-danger"),
}
ACCOUNT_FIELDS = ("number", "holder_name", "tariff_group_id", "locality_type", "locality",
                  "street", "house", "flat")
AUDIT_ACTIONS.update({
    "application.submitted": "Подана заявка на договор",
    "application.status": "Изменён статус заявки на договор",
    "application.account_opened": "Открыт лицевой счёт по заявке",
})
AUDIT_OBJECTS["application"] = "Заявка на договор"


class ReconciliationActView(ActDocumentsMixin, PortalModelView):
    """Reconciliation acts requested by organizations. Finance downloads the act generated
    from the ledger, then marks it ready or rejects it with a reason (app.views.acts); the
    status changes only that way, so the act has no edit form."""

    datamodel = SQLAInterface(m.ReconciliationAct)
    base_permissions = [*CAN_APPEND, "can_prepare"]
    list_title, show_title = "Акты сверки", "Акт сверки"
    add_title, edit_title = "Запрос акта сверки", "Изменение акта сверки"
    label_columns = labels(date_from="Период с", date_to="Период по", requested_by="Запросил",
                           requested_at="Дата запроса", ready_at="Дата формирования",
                           decided_by="Решение принял", decided_at="Дата решения",
                           note="Причина отказа")
    list_columns = ["organization", "contract", "date_from", "date_to", "status",
                    "requested_at"]
    show_columns = ["organization", "contract", "date_from", "date_to", "status",
                    "requested_by", "requested_at", "ready_at", "decided_by", "decided_at",
                    "note"]
    add_columns = ["organization", "contract", "date_from", "date_to"]
    edit_columns = add_columns
    search_columns = ["organization", "contract", "status", "date_from", "date_to",
                      "requested_at"]
    order_columns = ["date_from", "date_to", "status", "requested_at"]
    base_order = ("requested_at", "desc")
    choices_columns = {"status": m.ActStatus.labels}
    description_columns = {"date_to": "Не позже сегодняшнего дня; период — не более трёх лет"}

    def pre_add(self, item):
        super().pre_add(item)
        item.requested_by_id = current_user_id()

    def clean_row(self, item):
        acts.check_period(item.date_from, item.date_to, today=local_today())
        if item.contract and item.organization and (
                item.contract.organization_id != item.organization.id):
            raise RowRefused("Договор заключён с другой организацией.")
