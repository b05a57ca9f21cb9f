"""The wording of event notices: what each notice is about (``NOTICES``: its title, topic, the
values its wording may use and sample values), its default wording, staff's edits, and the
rendering in a sandbox.

- A wording is Jinja templates: a subject, a plain text, an HTML part, a short SMS, and the
  short line of a push notice. The defaults are files, one a notice:
  ``app/templates/notices/wordings/<code>.jinja``, a ``{% block part %}`` for each part, read as
  written (a newline right after the opening tag left out), never rendered as one template.
- Staff may edit every part but the push line (table ``notice_template``, the back office's
  «Шаблоны уведомлений»); a row nobody edited follows the defaults.
- Rendering is sandboxed with undefined names refused, from plain values (strings, numbers,
  lists of dicts), never ORM objects; a wording that does not render with the sample values
  (either branch of each yes/no) is refused when saved."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import NoticeTemplate, NoticeTopic

MAX_SUBJECT = 200
MAX_SMS = 400
WORDINGS_DIR = Path(__file__).resolve().parent.parent / "templates" / "notices" / "wordings"
#: The parts of a wording staff edit, with their Russian names for the refusals.
PARTS = {"subject": "тема", "text": "текст письма", "html": "HTML-версия", "sms": "текст SMS"}


class NoticeTemplateError(ValueError):
    """A wording staff cannot save; the message says why, in Russian."""


@dataclass(frozen=True)
class Notice:
    """What a notice is about and the values its wording may use (with sample ones)."""

    title: str
    topic: str | None  # a NoticeTopic, or None: an answer to the customer's own request
    placeholders: Mapping[str, str]
    sample: Mapping[str, Any]


#: Values every notice may use.
COMMON_PLACEHOLDERS = {
    "name": "имя получателя (может быть пустым)",
    "portal_url": "адрес личного кабинета",
    "supplier_phone": "телефон контактного центра",
}
COMMON_SAMPLE = {"name": "Иван Петров", "portal_url": "https://lk.nesk.example",
                 "supplier_phone": "8-800-600-02-20"}

_ACCOUNTS_PLACEHOLDERS = {
    "period": "месяц, например «октябрь 2026 г.»",
    "first_day": "первый день приёма показаний, например «15 октября»",
    "last_day": "последний день приёма показаний, например «25 октября»",
    "accounts": "лицевые счета: список, у каждого number (номер), address (адрес), "
                "link (страница передачи показаний)",
    "numbers": "номера лицевых счетов через запятую",
    "link": "ссылка на передачу показаний (страница счёта или личный кабинет)",
    "guest_link": "ссылка на передачу показаний без входа в личный кабинет",
}
_ACCOUNTS_SAMPLE = {
    "period": "октябрь 2026 г.", "first_day": "15 октября", "last_day": "25 октября",
    "accounts": [{"number": "230000000001", "address": "Краснодар, ул. Красная, д. 1, кв. 1",
                  "link": "https://lk.nesk.example/cabinet/readings/1"}],
    "numbers": "230000000001", "link": "https://lk.nesk.example/cabinet/readings/1",
    "guest_link": "https://lk.nesk.example/readings/",
}

NOTICES: dict[str, Notice] = {
    "bill_ready": Notice(
        title="Новый счёт",
        topic="bills",
        placeholders={
            "period": "месяц счёта, например «октябрь 2026 г.»",
            "account": "номер лицевого счёта", "address": "адрес помещения",
            "amount_due": "сумма к оплате, руб.", "to_pay": "есть ли что оплатить (да/нет)",
            "due_date": "срок оплаты", "pdf_attached": "приложен ли PDF счёта (безбумажный счёт)",
            "link": "ссылка на счета лицевого счёта в личном кабинете",
        },
        sample={"period": "октябрь 2026 г.", "account": "230000000001",
                "address": "Краснодар, ул. Красная, д. 1, кв. 1", "amount_due": "735,00",
                "to_pay": True, "due_date": "10.11.2026", "pdf_attached": True,
                "link": "https://lk.nesk.example/cabinet/bills/1"},
    ),
    "reading_window_opened": Notice(
        title="Начался приём показаний",
        topic="readings",
        placeholders=_ACCOUNTS_PLACEHOLDERS,
        sample=_ACCOUNTS_SAMPLE,
    ),
    "reading_window_closing": Notice(
        title="Напоминание: показания ещё не переданы",
        topic="readings",
        placeholders=_ACCOUNTS_PLACEHOLDERS,
        sample=_ACCOUNTS_SAMPLE,
    ),
    "reading_window_closed": Notice(
        title="Показания за месяц не поступили",
        topic="readings",
        placeholders={**_ACCOUNTS_PLACEHOLDERS,
                      "next_first_day": "первый день следующего приёма показаний",
                      "next_last_day": "последний день следующего приёма показаний"},
        sample={**_ACCOUNTS_SAMPLE, "next_first_day": "15 ноября",
                "next_last_day": "25 ноября"},
    ),
    "payment_received": Notice(
        title="Платёж получен",
        topic="payments",
        placeholders={
            "paid_on": "дата платежа", "total": "сумма платежа, руб.",
            "payments": "части платежа по лицевым счетам: список, у каждой account (номер "
                        "счёта), address (адрес), amount (сумма)",
            "numbers": "номера лицевых счетов через запятую",
            "link": "ссылка на историю платежей",
        },
        sample={"paid_on": "05.11.2026", "total": "1 235,00",
                "payments": [{"account": "230000000001", "amount": "1 235,00",
                              "address": "Краснодар, ул. Красная, д. 1, кв. 1"}],
                "numbers": "230000000001",
                "link": "https://lk.nesk.example/cabinet/payments/"},
    ),
    "high_bill": Notice(
        title="Начисление заметно выше прошлогоднего",
        topic="bills",
        placeholders={
            "period": "месяц", "account": "номер лицевого счёта", "address": "адрес помещения",
            "amount": "начисление или прогноз за месяц, руб.",
            "last_year_period": "тот же месяц год назад",
            "last_year_amount": "начисление год назад, руб.",
            "ratio": "во сколько раз больше, например «в 1,8 раза»",
            "estimate": "это прогноз, а не выставленное начисление (да/нет)",
            "from_reading": "прогноз по показаниям этого месяца (да/нет)",
            "window": "дни приёма показаний, например «с 15 по 25 число»",
            "link": "ссылка на график потребления",
        },
        sample={"period": "январь 2027 г.", "account": "230000000001",
                "address": "Краснодар, ул. Красная, д. 1, кв. 1", "amount": "2 940,00",
                "last_year_period": "январь 2026 г.", "last_year_amount": "1 470,00",
                "ratio": "в 2 раза", "estimate": True, "from_reading": True,
                "window": "с 15 по 25 число",
                "link": "https://lk.nesk.example/cabinet/consumption/"},
    ),
    "application_status": Notice(
        title="Изменился статус заявки",
        topic=None,
        placeholders={
            "number": "номер заявки", "status": "новый статус, например «на рассмотрении»",
            "kind": "вид заявки, например «Смена собственника»",
            "verification": "заявка на поверку или замену счётчика, не на договор (да/нет)",
            "approved": "заявка одобрена (да/нет)", "rejected": "заявка отклонена (да/нет)",
            "reason": "причина отказа", "link": "ссылка на заявку (пусто без личного кабинета)",
        },
        sample={"number": 17, "status": "отклонена", "kind": "Смена собственника",
                "verification": False, "approved": False, "rejected": True,
                "reason": "Нет выписки из ЕГРН на объект",
                "link": "https://lk.nesk.example/cabinet/applications/17"},
    ),
    "act_ready": Notice(
        title="Акт сверки сформирован",
        topic=None,
        placeholders={
            "contract": "номер договора", "organization": "организация",
            "date_from": "начало периода", "date_to": "конец периода",
            "attached": "приложен ли PDF акта (да/нет)",
            "link": "ссылка на акты сверки в личном кабинете организации",
        },
        sample={"contract": "Д-krd-1", "organization": "ООО «Ромашка»",
                "date_from": "01.01.2026", "date_to": "30.09.2026", "attached": True,
                "link": "https://lk.nesk.example/business/acts/"},
    ),
    # Sent by app.services.verification, once per meter and verification date.
    "meter_verification_due": Notice(
        title="Скоро истекает срок поверки счётчика",
        topic="readings",
        placeholders={
            "meters": "счётчики: список, у каждого serial (заводской номер), account (лицевой "
                      "счёт), address (адрес), due (срок поверки), link (заявка на поверку)",
            "serials": "заводские номера счётчиков через «, №»",
            "several": "счётчиков несколько (да/нет)",
            "due": "ближайший срок поверки, например «15.01.2027»",
            "link": "ссылка на заявку (для нескольких счётчиков — на личный кабинет)",
        },
        sample={"meters": [{"serial": "SN-123456", "account": "230000000001",
                            "address": "Краснодар, ул. Красная, д. 1, кв. 1",
                            "due": "15.01.2027",
                            "link": "https://lk.nesk.example/cabinet/applications/new"
                                    "?kind=verification&meter=1"}],
                "serials": "SN-123456", "several": False, "due": "15.01.2027",
                "link": "https://lk.nesk.example/cabinet/applications/new"
                        "?kind=verification&meter=1"},
    ),
    # Sent by app.services.autopay, once per refused attempt to charge a bill.
    "autopay_failed": Notice(
        title="Автоплатёж не прошёл",
        topic="payments",
        placeholders={
            "account": "номер лицевого счёта", "address": "адрес помещения",
            "amount": "сумма автоплатежа, руб.", "period": "месяц счёта",
            "reason": "причина, например «на карте недостаточно средств»",
            "card": "карта, например «Visa •••• 4242»",
            "will_retry": "будет ли ещё попытка (да/нет)",
            "retry_on": "день следующей попытки, например «10.11.2026»",
            "turned_off": "автоплатёж выключен, карта больше не подходит (да/нет)",
            "due_date": "срок оплаты счёта",
            "link": "ссылка на настройки автоплатежа",
        },
        sample={"account": "230000000001", "address": "Краснодар, ул. Красная, д. 1, кв. 1",
                "amount": "735,00", "period": "октябрь 2026 г.",
                "reason": "на карте недостаточно средств", "card": "Visa •••• 4242",
                "will_retry": True, "retry_on": "10.11.2026", "turned_off": False,
                "due_date": "10.11.2026",
                "link": "https://lk.nesk.example/cabinet/autopay/"},
    ),
    # Sent by app.services.signin_alerts, once per burst of failed sign-ins to an account.
    "signin_failures": Notice(
        title="Неудачные попытки войти в личный кабинет",
        topic=None,
        placeholders={
            "attempts": "сколько раз подряд ввели неверный пароль",
            "at": "когда была последняя попытка, например «06.12.2026 14:30»",
            "link": "ссылка на смену пароля (пусто, если сменить его может только филиал)",
            "by_code": "можно ли войти по одноразовому коду (да/нет)",
        },
        sample={"attempts": 5, "at": "06.12.2026 14:30", "by_code": True,
                "link": "https://lk.nesk.example/cabinet/profile/password"},
    ),
}


# ---------------------------------------------------------------------------------------------
# Default and staff's wordings

_BLOCK = re.compile(r"\{% block (\w+) %\}\n?(.*?)\{% endblock %\}", re.DOTALL)


@dataclass(frozen=True)
class Wording:
    subject: str
    text: str
    html: str
    sms: str | None


@dataclass(frozen=True)
class Letter:
    """A notice rendered for one recipient."""

    subject: str
    text: str
    html: str
    sms: str | None


@cache
def default_parts(code: str) -> dict[str, str]:
    """The parts of the notice's default wording (``PARTS`` and ``push``), from its file."""
    if code not in NOTICES:
        raise KeyError(code)
    source = (WORDINGS_DIR / f"{code}.jinja").read_text(encoding="utf-8")
    parts = dict(_BLOCK.findall(source))
    unknown = parts.keys() - {*PARTS, "push"}
    missing = {"subject", "text", "html"} - parts.keys()
    if unknown or missing:
        raise ValueError(f"{code}.jinja: unknown blocks {sorted(unknown)}, "
                         f"missing {sorted(missing)}")
    return parts


def default_wording(code: str) -> Wording:
    parts = default_parts(code)
    return Wording(parts["subject"], parts["text"], parts["html"], parts.get("sms"))


def wording(session: Session, code: str) -> Wording:
    """Staff's wording when they edited it, else the default."""
    row = session.execute(select(NoticeTemplate).where(NoticeTemplate.code == code)
                          ).scalar_one_or_none()
    if row is None or row.updated_at is None:
        return default_wording(code)
    return Wording(row.subject, row.text_body, row.html_body, row.sms_body or None)


def ensure_templates(session: Session) -> int:
    """Give every notice its row for staff to edit, and bring the rows nobody edited to the
    current defaults. Returns how many rows were added or refreshed."""
    rows = {t.code: t for t in session.execute(select(NoticeTemplate)).scalars()}
    changed = 0
    for code, notice in NOTICES.items():
        d, row = default_wording(code), rows.get(code)
        if row is None:
            session.add(NoticeTemplate(code=code, title=notice.title, subject=d.subject,
                                       text_body=d.text, html_body=d.html, sms_body=d.sms))
            changed += 1
        elif row.updated_at is None and (row.title, row.subject, row.text_body, row.html_body,
                                         row.sms_body) != (notice.title, d.subject, d.text,
                                                           d.html, d.sms):
            row.title, row.subject, row.text_body = notice.title, d.subject, d.text
            row.html_body, row.sms_body = d.html, d.sms
            changed += 1
    if changed:
        session.commit()
    return changed


def reset_template(session: Session, template: NoticeTemplate) -> None:
    """Back to the default wording (and to following it when the defaults change)."""
    d = default_wording(template.code)
    template.subject, template.text_body, template.html_body = d.subject, d.text, d.html
    template.sms_body, template.updated_at, template.updated_by_id = d.sms, None, None
    session.commit()


# ---------------------------------------------------------------------------------------------
# Rendering in the sandbox

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                 trim_blocks=True, lstrip_blocks=True)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True)


def placeholders(code: str) -> dict[str, str]:
    return {**COMMON_PLACEHOLDERS, **NOTICES[code].placeholders}


def sample_values(code: str) -> dict[str, Any]:
    return {**COMMON_SAMPLE, **NOTICES[code].sample}


def _one_line(source: str, values: Mapping[str, Any]) -> str:
    return " ".join(_text_env.from_string(source).render(values).split())


def _render_parts(w: Wording, values: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    subject = _one_line(w.subject, values)
    text = _tidy(_text_env.from_string(w.text).render(values))
    html = _html_env.from_string(w.html).render(values).strip()
    sms = _one_line(w.sms, values) if w.sms else None
    return subject, text, html, sms or None


def push_line(code: str, values: Mapping[str, Any]) -> str | None:
    """The notice's short line on a device (fixed wording, not edited by staff); None when it
    has none."""
    source = default_parts(code).get("push")
    return _one_line(source, values) if source else None


def _tidy(text: str) -> str:
    """At most one empty line in a row, none at the ends."""
    lines, blank = [], False
    for line in text.strip().splitlines():
        line = line.rstrip()
        if not line and blank:
            continue
        blank = not line
        lines.append(line)
    return "\n".join(lines)


def _explain(part: str, exc: Exception, code: str) -> str:
    where = PARTS[part]
    known = ", ".join("{{ %s }}" % k for k in placeholders(code))
    if isinstance(exc, TemplateSyntaxError):
        return (f"Ошибка в записи шаблона ({where}, строка {exc.lineno}): {exc.message}. "
                "Проверьте парные скобки {{ }} и {% %}.")
    if isinstance(exc, SecurityError) or "unsafe" in str(exc) or "attribute '_" in str(exc):
        return (f"Шаблон ({where}) обращается к служебным данным, это запрещено. "
                f"Используйте только подстановки: {known}.")
    if isinstance(exc, UndefinedError):
        return (f"В шаблоне ({where}) есть неизвестная подстановка ({exc.message}). "
                f"Можно использовать: {known}.")
    return f"Шаблон ({where}) не удаётся заполнить пробными данными: {exc}."


def _variants(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sample, and the sample with every yes/no flipped: both branches of each «if»."""
    flipped = {k: (not v) if isinstance(v, bool) else v for k, v in values.items()}
    return [dict(values), flipped]


def check_part(code: str, part: str, source: str | None) -> None:
    """Refuse one part of a wording (``PARTS``) that does not render with the sample values
    (either branch of each yes/no), with the reason in Russian."""
    if code not in NOTICES:
        raise NoticeTemplateError("Неизвестное уведомление.")
    if not (source or "").strip():
        if part == "sms":
            return
        raise NoticeTemplateError(f"Заполните поле «{PARTS[part]}».")
    env = _html_env if part == "html" else _text_env
    for values in _variants(sample_values(code)):
        try:
            env.from_string(source).render(values)
        except Exception as exc:  # any failure of a staff template is a refusal
            raise NoticeTemplateError(_explain(part, exc, code)) from None


def check_template(code: str, subject: str, text: str, html: str, sms: str | None) -> Letter:
    """Render a wording with the sample values; refuse it with a Russian message when it
    cannot be. Returns the sample letter."""
    w = Wording(subject, text, html, (sms or "").strip() or None)
    for part in PARTS:
        check_part(code, part, getattr(w, part))
    letter = compose(code, w, sample_values(code))
    if len(letter.subject) > MAX_SUBJECT:
        raise NoticeTemplateError(f"Тема получается длиннее {MAX_SUBJECT} символов.")
    if letter.sms and len(letter.sms) > MAX_SMS:
        raise NoticeTemplateError(f"Текст SMS получается длиннее {MAX_SMS} символов.")
    return letter


def compose(code: str, w: Wording, values: Mapping[str, Any],
            config: Mapping[str, Any] | None = None) -> Letter:
    """The letter: the wording rendered, in the portal's frame (footer, contacts)."""
    subject, text, html, sms = _render_parts(w, values)
    footer = _footer(code, values)
    text = f"{text}\n\n--\n{footer}"
    page = render_template("notices/letter.html", subject=subject, body=Markup(html),
                           footer=footer, portal_url=values.get("portal_url", ""),
                           supplier=(config or current_app.config).get("SUPPLIER_NAME", ""))
    return Letter(subject, text, page, sms)


def _footer(code: str, values: Mapping[str, Any]) -> str:
    topic = NOTICES[code].topic
    lines = ["Это письмо отправлено автоматически, отвечать на него не нужно."]
    if topic:
        lines.append(f"Вы получили его, потому что в личном кабинете включены уведомления "
                     f"«{NoticeTopic.label(topic)}». Изменить настройки: "
                     f"{values.get('portal_url', '')}/cabinet/profile/notifications")
    lines.append(f"Контактный центр НЭСК: {values.get('supplier_phone', '')}.")
    return "\n".join(lines)


def preview(session: Session, code: str) -> Letter:
    """The current wording with the sample values, as staff will see it in the back office."""
    w = wording(session, code)
    return compose(code, w, sample_values(code))
