"""The security manager and the role policy.

Roles other than Admin are FAB "builtin" roles: their permissions are data (ROLE_POLICY below,
turned into FAB_ROLES regexes), checked in memory without a query. Admin is a database role
that receives every permission when `flask fab create-permissions` syncs them.
"""
from __future__ import annotations

import re

from flask import g, request
from flask_appbuilder.security.sqla.manager import SecurityManager

from app.models import PortalUser
from app.services import audit
from app.services.phones import normalize_phone

ADMIN, STAFF, FINANCE, RESIDENT, BUSINESS = "Admin", "Staff", "Finance", "Resident", "Business"

#: Roles whose customer data is limited to the user's own branch.
BRANCH_SCOPED_ROLES = frozenset({STAFF})

#: What each builtin role may do, by view class name. "crud": list, show, add, edit, delete;
#: "read": list and show; "export": the .xlsx export of a list.
ROLE_POLICY: dict[str, dict[str, list[str]]] = {
    STAFF: {
        "crud": [
            "SubscriberView",
            "OrganizationView",
            "ContractView",
            "PremisesView",
            "PersonalAccountView",
            "AccountBindingView",
            "MeterView",
            "ReadingView",
            "ContractApplicationView",
            "FeedbackView",
            "MailingView",
        ],
        "read": [
            "BranchView",
            "TariffGroupView",
            "TariffView",
            "ConsumptionRangeView",
            "ChargeView",
            "InvoiceView",
            "PaymentView",
        ],
        "export": [],
    },
    FINANCE: {
        "crud": [
            "ChargeView",
            "InvoiceView",
            "PaymentView",
            "ReconciliationActView",
            "TariffView",
            "ConsumptionRangeView",
        ],
        "read": [
            "BranchView",
            "TariffGroupView",
            "SubscriberView",
            "OrganizationView",
            "ContractView",
            "PremisesView",
            "PersonalAccountView",
            "AccountBindingView",
            "MeterView",
            "ReadingView",
        ],
        "export": ["*"],
    },
    RESIDENT: {"crud": [], "read": [], "export": []},
    BUSINESS: {"crud": [], "read": [], "export": []},
}

CRUD_PERMISSIONS = r"^can_(list|show|add|edit|delete)$"
READ_PERMISSIONS = r"^can_(list|show)$"
EXPORT_PERMISSION = "can_export_xlsx"


def _alternation(names: list[str]) -> str:
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def build_fab_roles(view_menus: dict[str, tuple[str, str]]) -> dict[str, list[list[str]]]:
    """Turn ROLE_POLICY into FAB_ROLES: [view regex, permission regex] pairs per role, with
    menu access to each allowed view's menu item and category (``view_menus`` maps a view
    class name to its menu item name and category name)."""
    roles: dict[str, list[list[str]]] = {}
    for role, policy in ROLE_POLICY.items():
        readable = policy["crud"] + policy["read"]
        pairs: list[list[str]] = []
        if policy["crud"]:
            pairs.append([_alternation(policy["crud"]), CRUD_PERMISSIONS])
        if policy["read"]:
            pairs.append([_alternation(policy["read"]), READ_PERMISSIONS])
        exportable = readable if policy["export"] == ["*"] else policy["export"]
        if exportable:
            pairs.append([_alternation(exportable), f"^{EXPORT_PERMISSION}$"])
        menus = sorted({name for v in readable if v in view_menus for name in view_menus[v]})
        if menus:
            pairs.append([_alternation(menus), "^menu_access$"])
        roles[role] = pairs
    return roles


def current_branch_scope() -> int | None:
    """The branch a branch-scoped user (Staff) is limited to, or None when not limited."""
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    role_names = {r.name for r in user.roles}
    if role_names & {ADMIN, FINANCE}:
        return None
    if role_names & BRANCH_SCOPED_ROLES:
        return user.branch_id if user.branch_id is not None else -1
    return None


def sync_roles(appbuilder) -> list[str]:
    """Create every role of the policy, then sync all view permissions to the Admin role.

    A deploy step (``flask roles sync``), not done at every start: it is slow at scale."""
    sm = appbuilder.sm
    names = [ADMIN, *ROLE_POLICY, sm.auth_role_public]
    for name in names:
        sm.add_role(name)
    appbuilder.add_permissions(update_perms=True)
    return names


class PortalSecurityManager(SecurityManager):
    """FAB's manager with the portal's user model, phone logins and audit events."""

    user_model = PortalUser

    def __init__(self, appbuilder):
        from app.views.users import SubscriberView

        self.userdbmodelview = SubscriberView
        super().__init__(appbuilder)

    def find_user(self, username=None, email=None):
        """Find by username, then by e-mail, then by phone number in any usual Russian form."""
        user = super().find_user(username=username, email=email)
        if user is None and username:
            phone = normalize_phone(username)
            if phone:
                user = self.session.query(self.user_model).filter_by(phone=phone).one_or_none()
        return user

    def _remote_ip(self) -> str | None:
        return request.remote_addr if request else None

    def update_user_auth_stat(self, user, success=True):
        super().update_user_auth_stat(user, success)
        action = "login.success" if success else "login.failure"
        audit.record(self.session, action, actor_id=user.id, object_type="user",
                     object_id=user.id, ip=self._remote_ip())
