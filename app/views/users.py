"""The subscribers view: FAB's user administration with the portal's fields, branch-scoped."""
from __future__ import annotations

from flask_appbuilder.security.views import UserDBModelView

from app.views.base import BranchScopeFilter, PortalModelView


class SubscriberView(UserDBModelView):
    """Users of every kind (residents, organizations, staff); operators see their branch."""

    base_filters = [["id", BranchScopeFilter, lambda: None]]
    list_columns = ["username", "first_name", "last_name", "kind", "phone", "email", "branch",
                    "active", "last_login"]
    search_columns = ["username", "first_name", "last_name", "email", "phone", "kind", "branch",
                      "organization", "active"]
    pre_add = PortalModelView.pre_add
    pre_update = PortalModelView.pre_update
    _check_scope = PortalModelView._check_scope
