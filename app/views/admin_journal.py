"""The audit journal in the back office, and the Russian labels of its events and objects;
other views' modules add the labels of the events they record."""
from __future__ import annotations

from flask import current_app
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import models as m
from app.views.admin_common import labels
from app.views.base import DirectoryModelView

AUDIT_ACTIONS = {
    "login.success": "Вход в систему",
    "login.failure": "Неудачная попытка входа",
    "login.throttled": "Вход временно заблокирован",
    "login.by_code": "Вход по одноразовому коду",
    "otp.requested": "Запрошен одноразовый код",
    "password.changed": "Смена пароля",
    "password.reset": "Восстановление пароля",
    "user.created": "Создан пользователь",
    "user.registered": "Регистрация в личном кабинете",
    "user.contacts_released": "Контакты закрытого кабинета отданы новой регистрации",
    "password.change_refused": "Отказ в смене пароля: неверный текущий пароль",
    "profile.name_changed": "Изменены имя и фамилия",
    "profile.contact_changed": "Изменены телефон или e-mail",
    "profile.contact_refused": "Отказ в смене телефона или e-mail",
    "profile.notifications_changed": "Изменены настройки уведомлений",
    "pd.exported": "Выгрузка своих персональных данных",
    "pd_consent.withdrawn": "Отзыв согласия на обработку персональных данных",
    "credentials.issued": "Выданы логин и пароль",
    "account.bound": "Привязка лицевого счёта",
    "account.unbound": "Отвязка лицевого счёта",
    "account.bind_refused": "Отказ в привязке лицевого счёта",
    "reading.submitted": "Переданы показания",
    "reading.replaced": "Показания заменены",
    "reading.guest_refused": "Отказ в приёме показаний без входа",
    "payment.guest_not_found": "Оплата без входа: лицевой счёт не найден",
    "push.subscribed": "Включены push-уведомления на устройстве",
    "push.unsubscribed": "Отключены push-уведомления на устройстве",
    "session.ended": "Завершён вход на другом устройстве",
    "session.ended_others": "Выход на всех устройствах, кроме текущего",
    "export.pdf": "Выгрузка документа в PDF",
    "billing.run": "Расчёт периода",
    "job.queued": "Поставлена фоновая задача",
    "export.xlsx": "Выгрузка списка в Excel",
    "act.requested": "Запрошен акт сверки",
    "act.ready": "Акт сверки сформирован",
    "act.rejected": "Отказ в акте сверки",
    "act.downloaded": "Скачан акт сверки",
    "export.zip": "Выгрузка актов сверки филиала (.zip)",
    "demo.seed": "Загрузка демонстрационных данных",
    "autopay.requested": "Запрошено подключение автоплатежа",
    "autopay.enabled": "Автоплатёж подключён",
    "autopay.cap": "Изменён предел автоплатежа",
    "autopay.disabled": "Автоплатёж отключён",
    "autopay.card_removed": "Удалена сохранённая карта",
    "messenger.link_issued": "Выдана ссылка для подключения Telegram-бота",
    "messenger.linked": "Подключён Telegram-бот",
    "messenger.unlinked": "Отключён Telegram-бот",
}
AUDIT_OBJECTS = {"user": "Пользователь", "account": "Лицевой счёт", "meter": "Прибор учёта",
                 "reading": "Показания", "payment": "Платёж", "period": "Расчётный период",
                 "act": "Акт сверки", "job": "Фоновая задача", "mailing": "Рассылка",
                 "demo": "Демонстрационные данные", "push": "Устройство для push-уведомлений",
                 "autopay": "Автоплатёж"}


def audit_object(code: str | None) -> str:
    """An object type of the journal in Russian; for a list export, the list's title."""
    if code in AUDIT_OBJECTS:
        return AUDIT_OBJECTS[code]
    views = {type(v).__name__: v for v in current_app.appbuilder.baseviews}
    view = views.get(code or "")
    return f"Список «{view.list_title}»" if view is not None else (code or "")


class AuditEventView(DirectoryModelView):
    """The audit journal: append-only, so read-only for everyone."""

    datamodel = SQLAInterface(m.AuditEvent)
    base_permissions = ["can_list", "can_show"]
    list_title, show_title = "Журнал аудита", "Событие журнала аудита"
    add_title, edit_title = "Событие журнала аудита", "Событие журнала аудита"
    label_columns = labels(at="Время", action="Событие", actor="Пользователь",
                           object_type="Тип объекта", object_id="Код объекта", ip="IP-адрес",
                           details="Подробности")
    list_columns = ["at", "action", "actor", "object_type", "object_id", "ip"]
    show_columns = [*list_columns, "details"]
    search_columns = ["action", "actor", "object_type", "object_id", "ip", "at"]
    order_columns = ["at", "action", "object_type", "object_id", "ip"]
    base_order = ("at", "desc")
    formatters_columns = {
        "action": lambda code: AUDIT_ACTIONS.get(code, code),
        "object_type": audit_object,
    }
    description_columns = {"action": "Код события, например login.failure"}
