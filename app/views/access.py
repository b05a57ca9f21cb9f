"""Who may do what: the role names, the role policy (turned into FAB_ROLES), the branch a
Staff user is limited to. Views and the security manager (app.security) read it from here."""
from __future__ import annotations

import re

from flask import current_app, g

ADMIN, STAFF, FINANCE, RESIDENT, BUSINESS = "Admin", "Staff", "Finance", "Resident", "Business"
#: Anonymous visitors' role (AUTH_ROLE_PUBLIC): builtin and empty.
PUBLIC = "Public"

#: Roles whose customer data is limited to the user's own branch.
BRANCH_SCOPED_ROLES = frozenset({STAFF})

#: The mobile app's JSON API (app/views/api.py, api_readings.py): every permission, the rows
#: filtered to the user's own accounts like the cabinet's.
API_VIEWS = ["ContractApi", "AccountApi", "ChargeApi", "InvoiceApi", "PaymentApi", "MeterApi",
             "ReadingApi"]

#: What each builtin role may do, by view class name. "crud": list, show, add, edit, delete;
#: "read": list and show; "export": the .xlsx export of a list; "pages": every permission on
#: the audience's own screens (the cabinet), whose rows are filtered to the user anyway.
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
            "NoticeTemplateView",
        ],
        "read": [
            "BranchView",
            "TariffGroupView",
            "TariffView",
            "ConsumptionRangeView",
            "ChargeView",
            "InvoiceView",
            "PaymentView",
            "JobView",
            "ReconciliationActView",
        ],
        "export": [],
    },
    FINANCE: {
        "crud": [
            "ChargeView",
            "InvoiceView",
            "PaymentView",
            "ReconciliationActView",
            "ActExportView",
            "TariffView",
            "ConsumptionRangeView",
            "BillingRunView",
        ],
        "read": [
            "PaymentReconciliationView",
            "JobView",
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
        # Every permission of the acts view: also marking an act ready or rejected.
        "pages": ["ReconciliationActView"],
    },
    RESIDENT: {"crud": [], "read": [], "export": [], "pages": [
        "CabinetView", "ResidentChargeView", "ResidentInvoiceView", "ResidentPaymentView",
        "ResidentReadingView", "ResidentMeterView", "ConsumptionView", "ProfileView",
        "ApplicationView", "BillView", "PayView", "AutopayView", "ResidentFeedbackView",
        *API_VIEWS, "AutopayApi"]},
    BUSINESS: {"crud": [], "read": [], "export": [], "pages": [
        "BusinessView", "BusinessActsView", *API_VIEWS, "ActApi"]},
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
        if policy.get("pages"):
            pairs.append([_alternation(policy["pages"]), r"^can_\w+$"])
        menus = sorted({name for v in readable if v in view_menus for name in view_menus[v]})
        if menus:
            pairs.append([_alternation(menus), "^menu_access$"])
        roles[role] = pairs
    roles[PUBLIC] = []
    return roles


def current_branch_scope() -> int | None:
    """The branch a branch-scoped user (Staff) is limited to, or None when not limited."""
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    names = role_names(user)
    if names & {ADMIN, FINANCE}:
        return None
    if names & BRANCH_SCOPED_ROLES:
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


def role_names(user) -> set[str]:
    """The names of the user's roles, direct and through groups."""
    return {role.name for role in current_app.appbuilder.sm.get_user_roles(user)}
