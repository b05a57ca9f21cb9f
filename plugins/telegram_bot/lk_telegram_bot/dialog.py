"""What the bot answers: an update in, the messages to send out (client.Reply, Document,
CallbackAnswer). No I/O here but the database, so that each answer is a plain function of the
update and the data.

A chat nobody linked gets the way to link it from the profile (never a password in the chat).
A linked resident gets, with buttons: the balance and the last bill of each account
(app.services.accounts and ledger: the cabinet's own figures), the bill's PDF
(app.services.bill_documents), the readings with the web's check and confirm steps
(app.services.readings: window, plausibility, estimate; nothing is saved before «Подтвердить»)
and a link to the cabinet's pay page. Only the user's own accounts are reachable
(accounts.bound_account / resident_account_ids): another account's number, meter or bill gets
«не найден» and nothing else. Readings and typed account numbers are throttled per user
(app.services.throttle, ``bot_reading``). The step in progress is kept on the link row
(messenger_links.state), not in the chat.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload
from telegram import Update

from app.models import Invoice, MessengerLink, Meter, PersonalAccount
from app.services import accounts, audit, bill_documents, messenger_links, readings, tariffs
from app.services.ids import clean_number
from app.services.periods import local_today
from app.services.russian import date, energy, month_name, rubles
from app.services.throttle import Throttled, guard
from app.views.readings import CONFIRM_TEXT, accepted_message
from lk_telegram_bot.client import Action, Button, CallbackAnswer, Document, Reply

MESSENGER = "telegram"
#: The reading source: the resident's own submission, by the cabinet's rules, in the chat.
SOURCE = "bot"
#: Accounts shown one message each (the rest: in the cabinet).
ACCOUNTS_SHOWN = 10

HOW_TO_LINK = ("Этот чат не подключён к личному кабинету НЭСК.\n\n"
               "Чтобы подключить: войдите в личный кабинет, откройте «Профиль» → «Telegram-бот» "
               "→ «Подключить» и перейдите по ссылке. Пароль от кабинета в чат вводить не нужно "
               "и нельзя.")
PRIVATE_ONLY = "Бот работает только в личном чате: счета и показания видны лишь вам."
MENU_TEXT = "Что вы хотите сделать?"
NOT_FOUND = "Лицевой счёт не найден."
METER_NOT_FOUND = "Счётчик не найден."
NO_ACCOUNTS = ("К вашему кабинету не привязан ни один лицевой счёт. Привяжите счёт в личном "
               "кабинете: {portal}/cabinet/bind")
UNKNOWN = "Не понял вас. Выберите действие кнопкой или отправьте номер лицевого счёта."
EXPIRED_STEP = "Время на ввод вышло. Начните заново."
ASK_UNLINK = ("Отключить бота от личного кабинета? Уведомления в Telegram приходить "
              "перестанут.")
UNLINKED = "Бот отключён от личного кабинета. Подключить его снова можно в профиле."

MENU = (
    (Button("Баланс и счета", data="bal"),),
    (Button("Передать показания", data="rd"),),
    (Button("Оплатить", data="pay"),),
    (Button("Отключить бота", data="off"),),
)
BACK = (Button("Меню", data="menu"),)
ACCOUNT_NUMBER = re.compile(r"^[\d\s-]{10,24}$")
VALUE_SEPARATORS = re.compile(r"[;/\n]+|\s{1,}")


@dataclass
class Incoming:
    """What an update says: the chat, the text or the button pressed."""

    chat_id: str
    private: bool
    text: str | None = None
    data: str | None = None
    callback_id: str | None = None


def parse(update: Mapping[str, Any]) -> Incoming | None:
    """The parts of a Bot API update the bot answers (a message or a button), else None."""
    parsed = Update.de_json(dict(update), None)
    if parsed.callback_query is not None:
        query = parsed.callback_query
        message = query.message
        if message is None:
            return None
        return Incoming(str(message.chat.id), message.chat.type == "private",
                        data=query.data or "", callback_id=query.id)
    message = parsed.message
    if message is None or message.text is None:
        return None
    return Incoming(str(message.chat.id), message.chat.type == "private", text=message.text)


class Dialog:
    """Answers one update, with the portal's session and settings."""

    def __init__(self, session: Session, config: Mapping[str, Any]):
        self.session = session
        self.config = config
        self.portal = str(config.get("PORTAL_URL") or "").rstrip("/")

    # Entry --------------------------------------------------------------------------------

    def handle(self, update: Mapping[str, Any]) -> list[Action]:
        incoming = parse(update)
        if incoming is None:
            return []
        out: list[Action] = []
        if incoming.callback_id:
            out.append(CallbackAnswer(incoming.callback_id))
        if not incoming.private:
            return [*out, Reply(incoming.chat_id, PRIVATE_ONLY)]
        text = (incoming.text or "").strip()
        if text.startswith("/start ") and text.split(maxsplit=1)[1].strip():
            return [*out, *self.start(incoming, text.split(maxsplit=1)[1].strip())]
        link = messenger_links.user_for_chat(self.session, MESSENGER, incoming.chat_id)
        if link is None:
            return [*out, Reply(incoming.chat_id, HOW_TO_LINK)]
        if incoming.data is not None:
            return [*out, *self.button(link, incoming.chat_id, incoming.data)]
        return [*out, *self.message(link, incoming.chat_id, text)]

    def start(self, incoming: Incoming, token: str) -> list[Action]:
        """``/start <token>``: the one-time link from the profile."""
        try:
            user = messenger_links.redeem(self.session, MESSENGER, incoming.chat_id, token)
        except messenger_links.LinkError as exc:
            return [Reply(incoming.chat_id, str(exc))]
        name = f", {user.first_name}" if (user.first_name or "").strip() else ""
        return [Reply(incoming.chat_id,
                      f"Готово{name}: бот подключён к личному кабинету НЭСК. Здесь можно узнать "
                      "баланс, получить счёт, передать показания и перейти к оплате. "
                      "Уведомления, выбранные в профиле, тоже будут приходить сюда.", MENU)]

    # Messages and buttons -----------------------------------------------------------------

    def message(self, link: MessengerLink, chat: str, text: str) -> list[Action]:
        if text.lower() in ("/start", "/menu", "/help", "меню", "начать"):
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, MENU_TEXT, MENU)]
        if text.lower() == "/stop":
            return [self.ask_unlink(chat)]
        step = messenger_links.state(link)
        if step and step.get("step") == "value":
            return self.reading_value(link, chat, int(step["meter"]), text)
        if link.state and step is None:  # a step begun and left: say so once
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, EXPIRED_STEP, MENU)]
        if ACCOUNT_NUMBER.match(text) and 10 <= len(clean_number(text)) <= 14:
            return self.account_by_number(link, chat, clean_number(text))
        return [Reply(chat, UNKNOWN, MENU)]

    def button(self, link: MessengerLink, chat: str, data: str) -> list[Action]:
        action, _, arg = data.partition(":")
        if action == "menu":
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, MENU_TEXT, MENU)]
        if action == "bal":
            return self.balances(link, chat)
        if action == "pdf" and arg.isdigit():
            return self.bill(link, chat, int(arg))
        if action == "pay":
            return self.pay(link, chat)
        if action == "rd":
            return self.meters(link, chat)
        if action == "rm" and arg.isdigit():
            return self.ask_reading(link, chat, int(arg))
        if action == "ok":
            return self.confirm_reading(link, chat)
        if action == "off":
            return [self.ask_unlink(chat)]
        if action == "off!":
            messenger_links.unlink(self.session, link.user_id, MESSENGER, by="bot")
            return [Reply(chat, UNLINKED)]
        return [Reply(chat, MENU_TEXT, MENU)]

    def ask_unlink(self, chat: str) -> Reply:
        return Reply(chat, ASK_UNLINK, ((Button("Да, отключить", data="off!"),
                                         Button("Нет", data="menu")),))

    # Balances, bills, payment -------------------------------------------------------------

    def _summaries(self, user_id: int) -> list[accounts.AccountSummary]:
        return accounts.bound_account_summaries(self.session, user_id)

    def _last_invoices(self, account_ids: list[int]) -> dict[int, Invoice]:
        """Each account's latest bill: one query."""
        if not account_ids:
            return {}
        latest = (select(Invoice.account_id, func.max(Invoice.period).label("period"))
                  .where(Invoice.account_id.in_(account_ids))
                  .group_by(Invoice.account_id).subquery())
        return {invoice.account_id: invoice for invoice in self.session.execute(
            select(Invoice).join(latest, (Invoice.account_id == latest.c.account_id)
                                 & (Invoice.period == latest.c.period))).scalars()}

    def _pay_url(self, account_id: int) -> str:
        return f"{self.portal}/cabinet/pay/{account_id}"

    def balances(self, link: MessengerLink, chat: str, only: int | None = None
                 ) -> list[Action]:
        summaries = [s for s in self._summaries(link.user_id) if only is None or s.id == only]
        if not summaries:
            return [Reply(chat, NO_ACCOUNTS.format(portal=self.portal), (BACK,))]
        invoices = self._last_invoices([s.id for s in summaries[:ACCOUNTS_SHOWN]])
        out: list[Action] = []
        for summary in summaries[:ACCOUNTS_SHOWN]:
            invoice = invoices.get(summary.id)
            lines = [f"Лицевой счёт {summary.number}", summary.address, balance_line(summary)]
            row = [Button("Оплатить", url=self._pay_url(summary.id))]
            if invoice is not None:
                lines.append(f"Последний счёт: {month_name(invoice.period)}, "
                             f"{rubles(invoice.amount_due)}, оплатить до "
                             f"{date(invoice.due_date)}")
                row.insert(0, Button("Счёт PDF", data=f"pdf:{summary.id}"))
            out.append(Reply(chat, "\n".join(lines), (tuple(row),)))
        if len(summaries) > ACCOUNTS_SHOWN:
            out.append(Reply(chat, f"Остальные счета ({len(summaries) - ACCOUNTS_SHOWN}) — в "
                                   f"личном кабинете: {self.portal}/cabinet/"))
        out.append(Reply(chat, MENU_TEXT, MENU))
        return out

    def account_by_number(self, link: MessengerLink, chat: str, number: str) -> list[Action]:
        """A number typed: the user's own account, else «не найден» (counted, throttled)."""
        attempts = guard("bot_reading")
        subject = f"{MESSENGER}:{link.user_id}"
        try:
            attempts.check(subject, None)
        except Throttled as exc:
            return [Reply(chat, str(exc))]
        found = self.session.execute(
            select(PersonalAccount.id).where(
                PersonalAccount.number == number,
                PersonalAccount.id.in_(accounts.resident_account_ids(link.user_id)))
        ).scalar_one_or_none()
        if found is None:
            attempts.failed(subject, None)
            return [Reply(chat, NOT_FOUND)]
        return self.balances(link, chat, only=found)

    def bill(self, link: MessengerLink, chat: str, account_id: int) -> list[Action]:
        account = accounts.bound_account(self.session, link.user_id, account_id)
        if account is None:
            return [Reply(chat, NOT_FOUND)]
        invoice = self._last_invoices([account.id]).get(account.id)
        if invoice is None:
            return [Reply(chat, "По этому лицевому счёту ещё не выставлено ни одного счёта.")]
        body = bill_documents.bill_pdf(self.session, invoice, self.config)
        audit.record(self.session, "export.pdf", actor_id=link.user_id, object_type="account",
                     object_id=account.id, details={"page": MESSENGER, "document": "bill",
                                                    "invoice": invoice.number})
        return [Document(chat, f"Счёт_{account.number}_{invoice.period:%Y-%m}.pdf", body,
                         f"Счёт за {month_name(invoice.period)}, лицевой счёт {account.number}")]

    def pay(self, link: MessengerLink, chat: str) -> list[Action]:
        summaries = self._summaries(link.user_id)
        if not summaries:
            return [Reply(chat, NO_ACCOUNTS.format(portal=self.portal), (BACK,))]
        rows = [(Button(f"Л/с {s.number}" + (f" · {rubles(s.balance)}" if s.balance > 0 else ""),
                        url=self._pay_url(s.id)),) for s in summaries[:ACCOUNTS_SHOWN]]
        return [Reply(chat, "Оплата — на сайте личного кабинета: откройте ссылку, войдите и "
                            "подтвердите платёж. Выберите лицевой счёт:", (*rows, BACK))]

    # Readings -----------------------------------------------------------------------------

    def _rules(self) -> readings.Rules:
        return readings.Rules.from_config(self.config)

    def _meter(self, user_id: int, meter_id: int) -> Meter | None:
        """An active meter of one of the user's own accounts."""
        return self.session.execute(
            select(Meter).options(joinedload(Meter.account))
            .where(Meter.id == meter_id, Meter.active.is_(True),
                   Meter.account_id.in_(accounts.resident_account_ids(user_id)))
        ).scalar_one_or_none()

    def meters(self, link: MessengerLink, chat: str) -> list[Action]:
        today = local_today(self.config)
        window = self._rules().window
        if not window.is_open(today):
            return [Reply(chat, window.closed_message(today), (BACK,))]
        rows = self.session.execute(
            select(Meter, PersonalAccount.number)
            .join(PersonalAccount, PersonalAccount.id == Meter.account_id)
            .where(Meter.active.is_(True),
                   Meter.account_id.in_(accounts.resident_account_ids(link.user_id)))
            .order_by(PersonalAccount.number, Meter.serial)).all()
        if not rows:
            return [Reply(chat, "На ваших лицевых счетах нет счётчиков, по которым передают "
                                "показания.", (BACK,))]
        buttons = [(Button(f"Счётчик № {meter.serial} · л/с {number}", data=f"rm:{meter.id}"),)
                   for meter, number in rows[:ACCOUNTS_SHOWN * 2]]
        return [Reply(chat, f"Показания принимаются {window.days}. Выберите счётчик:",
                      (*buttons, BACK))]

    def ask_reading(self, link: MessengerLink, chat: str, meter_id: int) -> list[Action]:
        meter = self._meter(link.user_id, meter_id)
        if meter is None:
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, METER_NOT_FOUND)]
        today = local_today(self.config)
        window = self._rules().window
        if not window.is_open(today):
            return [Reply(chat, window.closed_message(today), (BACK,))]
        labels = readings.ZONE_LABELS[meter.zones]
        last = readings.last_accepted(self.session, meter.id, today.replace(day=1))
        lines = [f"Счётчик № {meter.serial}, лицевой счёт {meter.account.number}."]
        if last is not None:
            previous = ", ".join(f"{label} {energy(getattr(last, zone))}"
                                 for zone, label in labels.items()) if meter.zones > 1 \
                else energy(last.t1)
            lines.append(f"Предыдущее показание ({month_name(last.period)}): {previous}.")
        if meter.zones == 1:
            lines.append("Введите текущее показание — целое число, как на табло, без цифр после "
                         "запятой.")
        else:
            names = " и ".join(labels.values())
            example = " ".join(("12345", "6789", "2345")[:meter.zones])
            lines.append(f"Введите показания {names} через пробел, в этом порядке, например: "
                         f"{example}")
        messenger_links.set_state(self.session, link, {"step": "value", "meter": meter.id})
        return [Reply(chat, "\n".join(lines), ((Button("Отмена", data="menu"),),))]

    @staticmethod
    def _raw(meter: Meter, text: str) -> dict[str, str] | None:
        """The typed values by register: the whole text for one register, else one value per
        register separated by spaces (None when the count is wrong)."""
        zones = list(readings.ZONE_LABELS[meter.zones])
        if len(zones) == 1:
            return {zones[0]: text}
        parts = [p for p in VALUE_SEPARATORS.split(text.strip()) if p]
        return dict(zip(zones, parts)) if len(parts) == len(zones) else None

    def reading_value(self, link: MessengerLink, chat: str, meter_id: int,
                      text: str) -> list[Action]:
        """A value typed for the meter awaited: assessed as the web's check step does; nothing
        is saved yet."""
        meter = self._meter(link.user_id, meter_id)
        if meter is None:
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, METER_NOT_FOUND)]
        attempts = guard("bot_reading")
        subject = f"{MESSENGER}:{link.user_id}"
        try:
            attempts.check(subject, None)
        except Throttled as exc:
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, str(exc))]
        attempts.failed(subject, None)  # every value typed counts
        raw = self._raw(meter, text)
        cancel = ((Button("Отмена", data="menu"),),)
        if raw is None:
            names = ", ".join(readings.ZONE_LABELS[meter.zones].values())
            return [Reply(chat, f"Нужно {meter.zones} числа через пробел: {names}.", cancel)]
        try:
            assessment = readings.assess(self.session, meter, raw, local_today(self.config),
                                         self._rules())
        except readings.ReadingError as exc:
            return [Reply(chat, f"{exc}\nВведите показание ещё раз или нажмите «Отмена».",
                          cancel)]
        messenger_links.set_state(self.session, link, {"step": "confirm", "meter": meter.id,
                                                       "values": raw})
        return [Reply(chat, self.check_text(meter, assessment), (
            (Button("Подтвердить", data="ok"),),
            (Button("Исправить", data=f"rm:{meter.id}"), Button("Отмена", data="menu"))))]

    def check_text(self, meter: Meter, assessment: readings.Assessment) -> str:
        """The web's check step in words: values, consumption, the estimate, and why it needs
        confirming."""
        labels = readings.ZONE_LABELS[meter.zones]
        lines = [f"Проверьте показания счётчика № {meter.serial}:"]
        for zone, value in assessment.values.items():
            lines.append(f"{labels[zone]}: {energy(value)}")
        if assessment.previous_period is not None:
            lines.append(f"Расход с {month_name(assessment.previous_period)}: "
                         f"{energy(assessment.total)}")
        estimate = None if assessment.verification_note else tariffs.estimate(
            self.session, meter.account, meter.zones, assessment.consumption, assessment.period)
        if estimate is not None and estimate.lines:
            lines.append(f"Ориентировочно к начислению: {rubles(estimate.total)}")
        if assessment.rollover_zones:
            lines.append(CONFIRM_TEXT["rollover"])
        if assessment.held:
            lines.append(CONFIRM_TEXT["held"])
            lines.extend(doubt.text for doubt in assessment.doubts)
        if assessment.verification_note:
            lines.append(assessment.verification_note)
        lines.append("Сохранить?")
        return "\n".join(lines)

    def confirm_reading(self, link: MessengerLink, chat: str) -> list[Action]:
        """«Подтвердить»: assessed again from what the server kept (never the chat), then
        saved."""
        step = messenger_links.state(link)
        if not step or step.get("step") != "confirm":
            messenger_links.set_state(self.session, link, None)
            return [Reply(chat, EXPIRED_STEP, MENU)]
        meter = self._meter(link.user_id, int(step["meter"]))
        messenger_links.set_state(self.session, link, None)
        if meter is None:
            return [Reply(chat, METER_NOT_FOUND)]
        try:
            assessment = readings.assess(self.session, meter, dict(step.get("values") or {}),
                                         local_today(self.config), self._rules())
            readings.submit(self.session, meter, assessment, confirmed=True, source=SOURCE,
                            user_id=link.user_id, ip=None)
        except readings.ReadingError as exc:
            return [Reply(chat, str(exc), MENU)]
        return [Reply(chat, accepted_message([assessment], [meter]), MENU)]


def balance_line(summary: accounts.AccountSummary) -> str:
    """«К оплате», «Переплата» or «Задолженности нет», from the ledger's balance."""
    if summary.balance > 0:
        return f"К оплате: {rubles(summary.balance)}"
    if summary.balance < 0:
        return f"Переплата: {rubles(-summary.balance)}"
    return "Задолженности нет"
