"""register_all(): the one place that builds the back-office menu and the error pages."""
from __future__ import annotations

from flask_appbuilder import AppBuilder

from app.views import acts as act_views
from app.views import (
    admin_customers,
    admin_directories,
    admin_journal,
    admin_ledger,
    admin_metering,
    admin_requests,
    jobs,
    pwa,
    reconciliation,
)
from app.views import feedback as feedback_views
from app.views import mailings as mailing_views
from app.views import notices as notice_views
from app.views import push as push_views
from app.views import sessions as sessions_views
from app.views.guest_pay import GuestPayView

#: Menu categories: name -> (Russian label, icon).
CATEGORIES = {
    "Customers": ("Абоненты", "fa-users"),
    "Metering": ("Учёт", "fa-tachometer"),
    "Billing": ("Расчёты", "fa-rub"),
    "Requests": ("Обращения", "fa-envelope"),
    "Directories": ("Справочники", "fa-book"),
    "Journal": ("Журнал", "fa-history"),
}

#: The back-office views in menu order: (view class, Russian label, icon, category).
MENU = [
    (admin_customers.OrganizationView, "Организации", "fa-building", "Customers"),
    (admin_customers.ContractView, "Договоры", "fa-file-text-o", "Customers"),
    (admin_customers.PersonalAccountView, "Лицевые счета", "fa-id-card-o", "Customers"),
    (admin_customers.PremisesView, "Помещения и адреса", "fa-home", "Customers"),
    (admin_customers.AccountBindingView, "Привязки лицевых счетов", "fa-link", "Customers"),
    (admin_metering.MeterView, "Приборы учёта", "fa-tachometer", "Metering"),
    (admin_metering.ReadingView, "Показания", "fa-pencil-square-o", "Metering"),
    (admin_ledger.ChargeView, "Начисления", "fa-calculator", "Billing"),
    (admin_ledger.InvoiceView, "Счета", "fa-file-o", "Billing"),
    (admin_ledger.PaymentView, "Платежи", "fa-credit-card", "Billing"),
    (jobs.BillingRunView, "Расчёт периода", "fa-play-circle", "Billing"),
    (reconciliation.PaymentReconciliationView, "Сверка платежей", "fa-check-square-o", "Billing"),
    (admin_requests.ReconciliationActView, "Акты сверки", "fa-balance-scale", "Billing"),
    (act_views.ActExportView, "Выгрузка актов сверки", "fa-file-archive-o", "Billing"),
    (admin_requests.ContractApplicationView, "Заявки на договор", "fa-file-signature", "Requests"),
    (feedback_views.FeedbackView, "Обращения", "fa-comments", "Requests"),
    (mailing_views.MailingView, "Рассылки", "fa-paper-plane", "Requests"),
    (notice_views.NoticeTemplateView, "Шаблоны уведомлений", "fa-bell", "Requests"),
    (admin_directories.BranchView, "Филиалы", "fa-sitemap", "Directories"),
    (admin_directories.TariffGroupView, "Тарифные группы", "fa-tags", "Directories"),
    (admin_directories.TariffView, "Тарифы", "fa-rub", "Directories"),
    (admin_directories.ConsumptionRangeView, "Диапазоны потребления", "fa-sliders", "Directories"),
    (admin_journal.AuditEventView, "Журнал аудита", "fa-history", "Journal"),
    (jobs.JobView, "Фоновые задачи", "fa-tasks", "Journal"),
]

#: View class name -> (menu item name, category name), for the role policy's menu access.
VIEW_MENUS: dict[str, tuple[str, str]] = {
    view.__name__: (view.__name__, category) for view, _label, _icon, category in MENU
}
VIEW_MENUS["SubscriberView"] = ("List Users", "Security")


def register_all(appbuilder: AppBuilder) -> None:
    for view, label, icon, category in MENU:
        category_label, category_icon = CATEGORIES[category]
        appbuilder.add_view(
            view,
            view.__name__,
            label=label,
            icon=icon,
            category=category,
            category_label=category_label,
            category_icon=category_icon,
        )
    appbuilder.add_view_no_menu(GuestPayView)  # /pay/: paying without signing in
    pwa.register(appbuilder)  # /app/, the manifest, the service worker
    push_views.register(appbuilder)  # push notices: devices and the page script's endpoints
    sessions_views.register(appbuilder)  # where a person is signed in, and ending it
