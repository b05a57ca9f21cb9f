"""The home page: the portal's entrances for visitors, a short dashboard for staff."""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, url_for
from flask_appbuilder import IndexView, expose

from app.extensions import db
from app.models import Branch
from app.services import dashboard
from app.views import formats
from app.views.access import ADMIN, FINANCE, STAFF, current_branch_scope, role_names

BACK_OFFICE_ROLES = frozenset({ADMIN, STAFF, FINANCE})


@dataclass(frozen=True)
class Tile:
    """One counter of the dashboard and the filtered list it opens."""

    counter: str
    label: str
    icon: str
    view: str
    status: str


#: The dashboard's counters; ``_flt_0_status`` is the "equal to" filter of a status column.
TILES = (
    Tile("active_accounts", "Действующие лицевые счета", "fa-id-card-o", "PersonalAccountView",
         "active"),
    Tile("readings_to_review", "Показания на проверке", "fa-pencil-square-o", "ReadingView",
         "flagged"),
    Tile("new_applications", "Новые заявки на договор", "fa-file-text-o",
         "ContractApplicationView", "new"),
    Tile("new_feedback", "Новые обращения", "fa-comments", "FeedbackView", "new"),
)


def in_back_office(user) -> bool:
    return bool(user and user.is_authenticated and role_names(user) & BACK_OFFICE_ROLES)


class PortalIndexView(IndexView):
    """Replaces FAB's empty welcome page (FAB_INDEX_VIEW)."""

    index_template = "portal/landing.html"
    dashboard_template = "portal/dashboard.html"

    @expose("/")
    def index(self):
        self.update_redirect()
        user = getattr(g, "user", None)
        context = {}
        if in_back_office(user):
            branch_id = current_branch_scope()
            counters = dashboard.staff_counters(db.session, branch_id)
            sm = self.appbuilder.sm
            context["tiles"] = [
                (tile, formats.number(getattr(counters, tile.counter), 0),
                 url_for(f"{tile.view}.list", **{"_flt_0_status": tile.status}))
                for tile in TILES if sm.has_access("can_list", tile.view)
            ]
            branch = db.session.get(Branch, branch_id) if branch_id else None
            context["scope"] = branch.name if branch else "все филиалы"
            return self.render_template(self.dashboard_template, **context)
        return self.render_template(self.index_template, title="", **context)
