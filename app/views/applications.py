"""The resident's applications for a supply contract (/cabinet/applications/): the list of
their own, a new one with scans (a link may choose its kind and meter: ?kind=&meter=), one
application with its status and files. The rules live in
app.services.applications; every lookup is by the signed-in user, so another user's id is
answered like a missing one (404)."""
from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from app import models as m
from app.extensions import db, reads_only
from app.services import applications as service
from app.services import verification
from app.views import errors
from app.views.base import content_disposition
from app.views.cabinet import entrance
from app.views.formats import local_today

FORM_FIELDS = ("kind", "branch_id", "applicant_name", "address", "cadastral_number", "phone",
               "email", "comment")
STATUS_STYLES = {"new": "default", "in_review": "info", "approved": "success",
                 "rejected": "danger"}


def too_large_message() -> str:
    total = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return (f"Файлы слишком большие: вся заявка вместе с файлами — не более "
            f"{total // service.MB} МБ, каждый файл — не более "
            f"{service.max_file_bytes() // service.MB} МБ.")


def _uploads(files) -> list[service.Upload]:
    """Read each uploaded file, at most one byte past the limit (enough to refuse it)."""
    limit = service.max_file_bytes()
    return [service.Upload(f.filename or "", f.stream.read(limit + 1))
            for f in files if f.filename]


def attachment_response(attachment: m.ApplicationAttachment):
    """A scan as a download (never shown inline), with the type the portal detected."""
    path = service.attachment_path(attachment)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=attachment.content_type, as_attachment=True,
                         download_name=f"file-{attachment.id}", max_age=0)
    response.headers["Content-Disposition"] = content_disposition(
        attachment.filename, fallback=f"file-{attachment.id}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


class ApplicationView(BaseView):
    route_base = "/cabinet/applications"
    default_view = "index"

    def create_blueprint(self, appbuilder, endpoint=None, static_folder=None):
        blueprint = super().create_blueprint(appbuilder, endpoint, static_folder)
        blueprint.register_error_handler(RequestEntityTooLarge, self._too_large)
        return blueprint

    def _too_large(self, _error):
        errors.with_user()
        page = self.render_template("cabinet/applications_too_large.html",
                                    title="Заявка не отправлена", message=too_large_message())
        return make_response(page, 413)

    @expose("/")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def index(self):
        rows = service.list_for_user(db.session, current_user.id)
        return self.render_template("cabinet/applications.html", applications=rows,
                                    statuses=m.ApplicationStatus, kinds=m.ApplicationKind,
                                    styles=STATUS_STYLES, title="Заявки на договор")

    @expose("/new", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def new(self):
        values = {"applicant_name": current_user.get_full_name(),
                  "phone": current_user.phone or "",
                  "email": current_user.deliverable_email or "",
                  "branch_id": str(current_user.branch_id or ""), "kind": "new_connection"}
        if request.method == "GET":
            values.update(service.prefill(db.session, current_user.id, request.args,
                                          local_today()))
        errors: dict[str, str] = {}
        if request.method == "POST":
            try:
                form, files = request.form, request.files.getlist("files")
                values = {name: form.get(name, "") for name in FORM_FIELDS}
                application = service.submit_application(
                    db.session, current_user, files=_uploads(files), ip=request.remote_addr,
                    **values)
            except RequestEntityTooLarge as error:
                return self._too_large(error)
            except service.ApplicationError as error:
                errors = error.errors
                flash("Заявка не отправлена: исправьте отмеченные поля. Файлы нужно выбрать "
                      "заново.", "danger")
            else:
                flash(f"Заявка № {application.id} отправлена. О каждом изменении её статуса мы "
                      "сообщим.", "success")
                return redirect(url_for(".show", application_id=application.id))
        branches = db.session.execute(select(m.Branch.id, m.Branch.name)
                                      .order_by(m.Branch.name)).all()
        return self.render_template(
            "cabinet/applications_new.html", values=values, errors=errors, branches=branches,
            kinds=m.ApplicationKind.labels, max_files=service.MAX_FILES,
            max_mb=service.max_file_bytes() // service.MB,
            without_documents=service.WITHOUT_DOCUMENTS,
            title=("Заявка на поверку или замену прибора учёта"
                   if values.get("kind") == verification.APPLICATION_KIND
                   else "Заявка на заключение договора"))

    @expose("/<int:application_id>")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def show(self, application_id: int):
        try:
            application = service.get_for_user(db.session, current_user.id, application_id)
        except service.NotFound:
            abort(404)
        return self.render_template("cabinet/applications_show.html", application=application,
                                    statuses=m.ApplicationStatus, kinds=m.ApplicationKind,
                                    styles=STATUS_STYLES,
                                    title=f"Заявка № {application.id}")

    @expose("/<int:application_id>/files/<int:file_id>")
    @entrance("ResidentAuthView.signin")
    @has_access
    def download(self, application_id: int, file_id: int):
        try:
            attachment = service.attachment_for_user(db.session, current_user.id,
                                                     application_id, file_id)
        except service.NotFound:
            abort(404)
        return attachment_response(attachment)
