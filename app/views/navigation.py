"""The cabinets' navigation: which pages a resident and an organization move between, which of
them the phone's bottom bar carries (the most frequent errands: what I owe, the bill, readings,
what I paid), and which entry is the current page. Entries whose view is not installed (a
plugin left out, a test app) are skipped, so the menu never links to a missing page."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for


@dataclass(frozen=True)
class Entry:
    endpoint: str
    label: str
    icon: str
    on_bar: bool
    #: Endpoints that make this entry current; empty: any endpoint of the same view.
    matches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Item:
    url: str
    label: str
    icon: str
    on_bar: bool
    current: bool


RESIDENT = (
    Entry("CabinetView.home", "Главная", "home", True,
          ("CabinetView.home", "CabinetView.bind", "CabinetView.readings", "PayView.pay",
           "PayView.result", "BillView.account", "ConsumptionView.account",
           "AutopayView.index", "AutopayView.account")),
    Entry("ResidentInvoiceView.list", "Счета", "bill", True),
    Entry("ResidentReadingView.list", "Показания", "pencil", True),
    Entry("ResidentPaymentView.list", "Платежи", "card", True),
    Entry("ResidentChargeView.list", "Начисления", "list", False),
    Entry("ResidentMeterView.list", "Счётчики", "meter", False),
    Entry("ApplicationView.index", "Заявки", "clipboard", False),
    Entry("ResidentFeedbackView.index", "Обращения", "mail", False),
    Entry("ProfileView.index", "Профиль", "user", False),
)

BUSINESS = (
    Entry("BusinessView.home", "Договоры", "briefcase", True,
          ("BusinessView.home", "BusinessView.account", "BusinessView.readings")),
    Entry("BusinessView.payments", "Платежи", "card", True, ("BusinessView.payments",)),
    Entry("BusinessActsView.list", "Акты сверки", "check", True),
    Entry("BusinessView.feedback", "Обращения", "mail", True, ("BusinessView.feedback",)),
    Entry("BusinessPushView.index", "Уведомления", "bolt", False),
    Entry("BusinessSessionsView.index", "Входы в кабинет", "user", False),
)

MENUS = {"resident": RESIDENT, "business": BUSINESS}


def _is_current(entry: Entry, here: str) -> bool:
    if entry.matches:
        return here in entry.matches
    return here.split(".")[0] == entry.endpoint.split(".")[0]


def items(menu: str) -> list[Item]:
    """The entries of one cabinet's menu that this app serves, for the current request."""
    here = request.endpoint or ""
    served = current_app.view_functions
    return [Item(url_for(e.endpoint), e.label, e.icon, e.on_bar, _is_current(e, here))
            for e in MENUS[menu] if e.endpoint in served]
