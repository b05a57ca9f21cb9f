"""Reconciliation acts in the back office: the act's document (.xlsx, PDF), finance's decision
(ready or rejected with a reason), and the page «Выгрузка актов сверки» that exports the acts
of a whole branch as one .zip in the background.

Branch scope of acts is wider than the rest of the back office's: a branch operator (Staff)
and a finance officer attached to a branch see only their branch's acts and exports;
administrators and head-office finance (no branch) see all. Out of scope is a 404, the same as
missing.
"""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import has_access, permission_name
from sqlalchemy import select

from app import models as m
from app.extensions import db
from app.services import act_exports, act_jobs, acts, audit
from app.services.scoping import branch_condition
from app.views.access import ADMIN, FINANCE, current_branch_scope, role_names
from app.views.base import CAN_READ, content_disposition, current_user_id
from app.views.formats import local_today
from app.views.jobs import JobView, progress_bar

#: Exports listed on the page, newest first.
RECENT_EXPORTS = 15
FORMAT_LABELS = {"xlsx": "Excel (.xlsx)", "pdf": "PDF"}
ZIP_MIMETYPE = "application/zip"


def act_branch_scope() -> int | None:
    """The branch whose acts the signed-in user may see, or None for every branch."""
    scope = current_branch_scope()
    if scope is not None:
        return scope
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    roles = role_names(user)
    if FINANCE in roles and ADMIN not in roles and user.branch_id is not None:
        return user.branch_id
    return None


class ActScopeFilter(BaseFilter):
    """Rows of ``model`` within the user's act scope (acts, organizations, contracts)."""

    name = "Филиал сотрудника"
    arg_name = "act_scope"

    def apply(self, query, value):
        branch_id = act_branch_scope()
        if branch_id is None:
            return query
        return query.filter(branch_condition(self.model, branch_id))


class ExportScopeFilter(BaseFilter):
    """Branch exports started by users of the user's act scope (a branch's finance officers
    see their colleagues' exports, not another branch's)."""

    name = "Филиал сотрудника"
    arg_name = "export_scope"

    def apply(self, query, value):
        branch_id = act_branch_scope()
        if branch_id is None:
            return query
        colleagues = select(m.PortalUser.id).where(m.PortalUser.branch_id == branch_id)
        return query.filter(m.BackgroundJob.created_by_id.in_(colleagues))


def send_stream(stream, mimetype: str, filename: str, fallback: str):
    response = send_file(stream, mimetype=mimetype, as_attachment=True, download_name=fallback)
    response.headers["Content-Disposition"] = content_disposition(filename, fallback=fallback)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def act_download(act: m.ReconciliationAct, fmt: str, page: str, back: str):
    """The act's document as a download, journaled; an unknown format is a 404. A large act
    is built in the background: the first request starts the job and goes ``back`` with a
    message, a later one gets the finished file."""
    registry = acts.exporters()
    if fmt not in registry:
        abort(404)
    try:
        large = act_jobs.prepare(db.session, act, fmt, current_user_id())
    except acts.ActError as error:
        flash(str(error), "warning")
        return redirect(back)
    if large is not None and large.path is None:
        flash(large.message, "danger" if large.job.status == "failed" else "info")
        return redirect(back)
    if large is None:
        stream, mimetype, filename = acts.render(db.session, act, fmt)
    else:
        stream, mimetype = large.path.open("rb"), registry[fmt].mimetype
        filename = f"{acts.stem(act.contract.number, act.date_from, act.date_to)}." \
                   f"{registry[fmt].extension}"
    audit.record(db.session, "act.downloaded", actor_id=current_user_id(), object_type="act",
                 object_id=act.id, ip=request.remote_addr,
                 details={"page": page, "document": "reconciliation_act",
                          **({"job": large.job.id} if large is not None else {})})
    return send_stream(stream, mimetype, filename, acts.ascii_filename(act, fmt))


class ActDocumentsMixin:
    """What ReconciliationActView adds to its list and card: the act's files, the decision,
    and the act scope (finance of a branch included)."""

    base_filters = [["id", ActScopeFilter, lambda: None]]
    show_template = "acts/act_show.html"
    list_template = "acts/act_list.html"

    def _init_properties(self):
        for fields in ("add_form_query_rel_fields", "search_form_query_rel_fields"):
            setattr(self, fields, {"organization": [["id", ActScopeFilter, None]],
                                   "contract": [["id", ActScopeFilter, None]],
                                   **(getattr(self, fields) or {})})
        super()._init_properties()

    def lookup_branch_scope(self) -> int | None:
        """Organizations and contracts are searched within the act scope."""
        return act_branch_scope()

    def _check_scope(self, item) -> None:
        branch_id = act_branch_scope()
        organization = db.session.get(m.Organization, item.organization_id) \
            if item.organization_id else None
        if branch_id is not None and (organization is None
                                      or organization.branch_id != branch_id):
            raise acts.ActError("Организация относится к другому филиалу: сохранить акт "
                                "нельзя.")

    def _act(self, pk) -> m.ReconciliationAct:
        act = self.datamodel.get(pk, self._base_filters)
        if act is None:
            abort(404)
        return act

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        widgets = self._show(pk)
        act = self._act(pk)
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, act=act,
            formats=[(f, FORMAT_LABELS.get(f, f)) for f in acts.formats()],
            jobs=act_jobs.organization_jobs(db.session, act.organization_id),
            can_reject=act.status in ("requested", "ready"),
            can_ready=act.status == "requested")

    @expose("/document/<int:pk>/<fmt>")
    @has_access
    @permission_name("show")
    def document(self, pk: int, fmt: str):
        """The act generated from the ledger now (a large one: by a background job), whatever
        its status (finance checks it before marking it ready)."""
        return act_download(self._act(pk), fmt, "back_office", url_for(".show", pk=pk))

    @expose("/decide/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("prepare")
    def decide(self, pk: int):
        act = self._act(pk)
        status = request.form.get("status", "")
        try:
            acts.decide(db.session, act, current_user_id(), status, request.form.get("note"))
        except acts.ActError as error:
            flash(str(error), "danger")
        else:
            flash(f"Акт сверки № {act.id}: «{m.ActStatus.label(act.status)}». Организация "
                  "увидит это в личном кабинете.", "success")
        return redirect(url_for(".show", pk=pk))


class ActExportView(JobView):
    """«Выгрузка актов сверки»: finance starts the export of every organization's act of a
    branch for a period; the archive is downloaded here when the job is done."""

    route_base = "/actexportview"
    base_filters = [["kind", FilterEqual, act_exports.JOB_KIND], ["id", ExportScopeFilter, None]]
    base_permissions = [*CAN_READ, "can_add"]
    list_title = "Выгрузка актов сверки"
    show_title = "Выгрузка актов сверки"
    add_title = edit_title = "Выгрузка актов сверки"
    show_template = "acts/export_show.html"

    def _jobs(self) -> list[m.BackgroundJob]:
        _count, jobs = self.datamodel.query(self._base_filters, order_column="created_at",
                                            order_direction="desc", page=0,
                                            page_size=RECENT_EXPORTS)
        return list(jobs)

    def _branches(self) -> list[m.Branch]:
        branch_id = act_branch_scope()
        query = select(m.Branch).order_by(m.Branch.name)
        if branch_id is not None:
            query = query.where(m.Branch.id == branch_id)
        return list(db.session.execute(query).scalars())

    @expose("/list/")
    @has_access
    def list(self):
        jobs = self._jobs()
        # By default: from the start of the year to the end of the last month.
        last_month_end = local_today().replace(day=1) - dt.timedelta(days=1)
        return self.render_template(
            "acts/export.html", title=self.list_title, jobs=jobs, branches=self._branches(),
            formats=[(f, FORMAT_LABELS.get(f, f)) for f in acts.formats()],
            default_from=last_month_end.replace(month=1, day=1), default_to=last_month_end,
            ready={job.id for job in jobs if act_exports.job_archive(job) is not None},
            running=any(job.status in ("queued", "running") for job in jobs),
            statuses=m.JobStatus.labels, progress_bar=progress_bar)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        widgets = self._show(pk)
        job = self.datamodel.get(pk, self._base_filters)
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, ready=act_exports.job_archive(job) is not None)

    @expose("/add/", methods=["POST"])
    @has_access
    def add(self):
        branch_id = request.form.get("branch", "")
        scope = act_branch_scope()
        if scope is not None and branch_id != str(scope):
            flash("Выгрузка доступна только по вашему филиалу.", "danger")
            return redirect(url_for(".list"))
        try:
            job = act_exports.start_batch(db.session, current_user_id(), branch_id,
                                          request.form.get("date_from"),
                                          request.form.get("date_to"),
                                          request.form.getlist("format"), today=local_today())
        except acts.ActError as error:
            flash(str(error), "danger")
        else:
            flash(f"{job.title}: {m.JobStatus.label(job.status).lower()}.",
                  "danger" if job.status == "failed" else "success")
        return redirect(url_for(".list"))

    @expose("/download/<int:pk>")
    @has_access
    @permission_name("show")
    def download(self, pk: int):
        """The finished archive of an export within the user's scope; anything else is a 404."""
        job = self.datamodel.get(pk, self._base_filters)
        path = act_exports.job_archive(job)
        if path is None:
            abort(404)
        params = act_exports.batch_params(job)
        audit.record(db.session, "export.zip", actor_id=current_user_id(), object_type="job",
                     object_id=job.id, ip=request.remote_addr,
                     details={"page": "act_export", "branch": params.get("branch_id")})
        stem = f"acts_{params.get('date_from')}_{params.get('date_to')}_{job.id}"
        return send_stream(path.open("rb"), ZIP_MIMETYPE, f"Акты_сверки_{stem[5:]}.zip",
                           f"{stem}.zip")
