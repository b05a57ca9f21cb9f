"""The base of every back-office view: branch scoping for branch operators."""
from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.models.filters import BaseFilter

from app.extensions import db
from app.security import current_branch_scope
from app.services.scoping import branch_condition, in_branch


class OutOfScope(Exception):
    """A branch operator tried to place a row outside their branch."""


class BranchScopeFilter(BaseFilter):
    """Limit rows to the signed-in user's branch when the user's role is branch-scoped."""

    name = "Филиал сотрудника"
    arg_name = "branch_scope"

    def apply(self, query, value):
        branch_id = current_branch_scope()
        if branch_id is None:
            return query
        return query.filter(branch_condition(self.model, branch_id))


class PortalModelView(ModelView):
    """A back-office list/show/add/edit view whose rows are scoped to the user's branch.

    FAB applies base_filters to list, show, edit and delete, but not to create; pre_add and
    pre_update refuse a row placed outside the operator's branch.
    """

    base_filters = [["id", BranchScopeFilter, lambda: None]]
    page_size = 25

    def _check_scope(self, item) -> None:
        branch_id = current_branch_scope()
        if branch_id is not None and not in_branch(db.session, item, branch_id):
            db.session.rollback()
            raise OutOfScope("Запись относится к другому филиалу: сохранить её нельзя.")

    def pre_add(self, item):
        self._check_scope(item)

    def pre_update(self, item):
        self._check_scope(item)
