"""register_all(): the one place that builds the back-office menu."""
from __future__ import annotations

from flask_appbuilder import AppBuilder

from app.views import admin

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
    (admin.OrganizationView, "Организации", "fa-building", "Customers"),
    (admin.ContractView, "Договоры", "fa-file-text-o", "Customers"),
    (admin.PersonalAccountView, "Лицевые счета", "fa-id-card-o", "Customers"),
    (admin.PremisesView, "Помещения и адреса", "fa-home", "Customers"),
    (admin.AccountBindingView, "Привязки лицевых счетов", "fa-link", "Customers"),
    (admin.MeterView, "Приборы учёта", "fa-tachometer", "Metering"),
    (admin.ReadingView, "Показания", "fa-pencil-square-o", "Metering"),
    (admin.ChargeView, "Начисления", "fa-calculator", "Billing"),
    (admin.InvoiceView, "Счета", "fa-file-o", "Billing"),
    (admin.PaymentView, "Платежи", "fa-credit-card", "Billing"),
    (admin.ReconciliationActView, "Акты сверки", "fa-balance-scale", "Billing"),
    (admin.ContractApplicationView, "Заявки на договор", "fa-file-signature", "Requests"),
    (admin.FeedbackView, "Обращения", "fa-comments", "Requests"),
    (admin.MailingView, "Рассылки", "fa-paper-plane", "Requests"),
    (admin.BranchView, "Филиалы", "fa-sitemap", "Directories"),
    (admin.TariffGroupView, "Тарифные группы", "fa-tags", "Directories"),
    (admin.TariffView, "Тарифы", "fa-rub", "Directories"),
    (admin.ConsumptionRangeView, "Диапазоны потребления", "fa-sliders", "Directories"),
    (admin.AuditEventView, "Журнал аудита", "fa-history", "Journal"),
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
