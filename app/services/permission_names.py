"""Permissions in Russian: «Начисления — просмотр списка» instead of "can list on ChargeView".

FAB names a permission by an action (``can_list``, ``menu_access``) and a view or menu item
(``ChargeView``, ``Billing``). The back office shows the action from ACTIONS and the section
by what the staff already read: the menu's label, else the view's Russian list title, else
VIEWS (views that have neither, and the cabinet's lists whose titles repeat the back
office's). The roles of the policy (app.security.ROLE_POLICY) are FAB "builtin" roles: their
permissions are the rows their rules match, not rows linked to them in the database.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_appbuilder.security.sqla.models import PermissionView
from sqlalchemy.orm import Session

#: What each permission lets one do, in the order a permission list reads best.
ACTIONS = {
    "can_list": "просмотр списка",
    "can_show": "просмотр записи",
    "can_add": "добавление",
    "can_edit": "изменение",
    "can_delete": "удаление",
    "can_export_xlsx": "экспорт в Excel",
    "menu_access": "пункт меню",
    "can_get": "чтение данных",
    "can_post": "отправка данных",
    "can_put": "изменение данных",
    "can_download": "скачивание файлов",
    "can_prepare": "решение по акту (готов или отказ)",
    "copyrole": "копирование ролей",
    "can_chart": "просмотр диаграммы",
    "can_userinfo": "просмотр своих данных",
    "userinfoedit": "изменение своих данных",
    "resetmypassword": "смена своего пароля",
    "resetpasswords": "смена пароля пользователю",
    "can_this_form_get": "открытие формы",
    "can_this_form_post": "отправка формы",
    "can_home": "главная страница",
    "can_index": "главная страница раздела",
    "can_account": "страница лицевого счёта",
    "can_readings": "передача показаний",
    "can_bind": "привязка лицевого счёта",
    "can_unbind": "отвязка лицевого счёта",
    "can_invoice": "счёт в PDF",
    "can_receipt": "квитанция или чек в PDF",
    "can_report": "отчёт о платежах за период",
    "can_pay": "оплата",
    "can_result": "результат оплаты",
    "can_turn_on": "включение автоплатежа",
    "can_setup_return": "результат первого платежа автоплатежа",
    "can_cap": "предел суммы автоплатежа",
    "can_switch_off": "выключение автоплатежа",
    "can_remove_card": "удаление сохранённой карты",
    "can_payments": "история платежей",
    "can_feedback": "обращения",
    "can_new": "новая заявка",
    "can_request_act": "запрос акта сверки",
    "can_name": "изменение имени и фамилии",
    "can_contact": "смена телефона или e-mail",
    "can_contact_confirm": "подтверждение нового телефона или e-mail",
    "can_contact_resend": "повторная отправка кода",
    "can_password": "смена пароля",
    "can_notifications": "настройки уведомлений",
    "can_messenger_link": "подключение бота в мессенджере",
    "can_messenger_unlink": "отключение бота в мессенджере",
    "can_export": "выгрузка своих данных",
    "can_withdraw": "отзыв согласия на обработку персональных данных",
    "can_xlsx": "выгрузка в Excel",
    "can_csv": "выгрузка в CSV",
}

#: Sections with neither a menu item nor a Russian list title of their own, or whose title
#: would read like a back-office section (the cabinet's «Начисления»).
VIEWS = {
    "PortalIndexView": "Главная страница",
    "UtilView": "Служебные переходы",
    "LocaleView": "Выбор языка",
    "StaffAuthDBView": "Вход сотрудников",
    "ResidentAuthView": "Вход жителей",
    "BusinessAuthView": "Вход организаций",
    "UserInfoEditView": "Изменение моих данных",
    "ResetMyPasswordView": "Смена своего пароля",
    "ResetPasswordView": "Смена пароля пользователя",
    "UserStatsChartView": "Статистика входов",
    "GuestReadingView": "Показания без входа",
    "GuestPayView": "Оплата без входа",
    "PwaView": "Приложение для телефона",
    "ResidentPushView": "Личный кабинет: push-уведомления",
    "BusinessPushView": "Кабинет организации: push-уведомления",
    "PublicFeedbackView": "Обратная связь без входа",
    "ContactsView": "Контакты и филиалы",
    "UnsubscribeView": "Отписка от рассылок",
    "CabinetView": "Личный кабинет: главная",
    "ResidentChargeView": "Личный кабинет: начисления",
    "ResidentInvoiceView": "Личный кабинет: счета",
    "ResidentPaymentView": "Личный кабинет: платежи",
    "ResidentReadingView": "Личный кабинет: история показаний",
    "ResidentMeterView": "Личный кабинет: приборы учёта",
    "ConsumptionView": "Личный кабинет: потребление",
    "BillView": "Личный кабинет: квитанции и отчёты",
    "PayView": "Личный кабинет: оплата",
    "AutopayView": "Личный кабинет: автоплатёж",
    "ApplicationView": "Личный кабинет: заявки на договор",
    "ProfileView": "Личный кабинет: профиль",
    "ResidentFeedbackView": "Личный кабинет: обращения",
    "BusinessView": "Кабинет организации",
    "BusinessActsView": "Кабинет организации: акты сверки",
    "SandboxPayView": "Тестовая платёжная страница",
    "DevOutboxView": "Исходящие сообщения (режим разработки)",
    "YooKassaNotifyView": "Уведомления ЮKassa",
    "TelegramWebhookView": "Обновления Telegram-бота",
    "PortalSecurityApi": "API: вход",
    "OpenApi": "API: описание (OpenAPI)",
    "SwaggerView": "API: документация (Swagger)",
    "MenuApi": "API: меню",
    "ContractApi": "API: договоры",
    "AccountApi": "API: лицевые счета",
    "ChargeApi": "API: начисления",
    "InvoiceApi": "API: счета",
    "PaymentApi": "API: платежи",
    "MeterApi": "API: приборы учёта",
    "ReadingApi": "API: показания",
    "ActApi": "API: акты сверки",
    "AutopayApi": "API: автоплатёж",
}

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
_ACTION_ORDER = {name: index for index, name in enumerate(ACTIONS)}


def action_name(permission: str) -> str:
    """A permission's action in Russian; an unknown one (a plugin's) by its code."""
    return ACTIONS.get(permission, permission)


@dataclass(frozen=True)
class PermissionNames:
    """The Russian names of one application's sections (``views``: FAB name -> Russian)."""

    views: Mapping[str, str]

    def view(self, name: str) -> str:
        return self.views.get(name, name)

    def of(self, permission_view: PermissionView) -> str:
        """«Раздел — действие»."""
        return (f"{self.view(permission_view.view_menu.name)} — "
                f"{action_name(permission_view.permission.name)}")

    def sort_key(self, permission_view: PermissionView) -> tuple:
        """By section, then by action as ACTIONS orders them."""
        action = permission_view.permission.name
        return (self.view(permission_view.view_menu.name).casefold(),
                _ACTION_ORDER.get(action, len(_ACTION_ORDER)), action)

    def listed(self, permission_views: Iterable[PermissionView]) -> list[str]:
        return [self.of(pv) for pv in sorted(permission_views, key=self.sort_key)]


def section_names(baseviews: Iterable, menu_items: Iterable) -> dict[str, str]:
    """FAB name -> Russian name of every view and menu item: VIEWS first, then the menu's
    labels (a category as «Раздел меню «…»»), then the views' Russian list titles."""
    names: dict[str, str] = {}
    for view in baseviews:
        title = str(getattr(view, "list_title", "") or "")
        if CYRILLIC.search(title):
            names[view.class_permission_name] = title
    for item, is_category in _walk(menu_items):
        label = str(item.label or "")
        if item.name and CYRILLIC.search(label):
            names[item.name] = f"Раздел меню «{label}»" if is_category else label
    names.update(VIEWS)
    return names


def _walk(items: Iterable, depth: int = 0):
    for item in items:
        children = list(item.childs or [])
        yield item, depth == 0 and bool(children)
        yield from _walk(children, depth + 1)


def every_permission_view(session: Session) -> list[PermissionView]:
    """All permissions with their actions and sections (joined by FAB's model): one query."""
    return session.query(PermissionView).all()


def granted_by_rules(rules: Iterable[tuple[str, str]] | Iterable[list[str]],
                     permission_views: Iterable[PermissionView]) -> list[PermissionView]:
    """The permissions a builtin role's [view regex, permission regex] rules grant, matched
    as FAB's security manager matches them when it checks access."""
    rules = [(re.compile(view), re.compile(permission)) for view, permission in rules]
    return [pv for pv in permission_views
            if any(view.match(pv.view_menu.name) and permission.match(pv.permission.name)
                   for view, permission in rules)]
