"""Event notices: a new bill, the reading window (open, closing soon, closed without a reading),
a payment received, a high bill, and the answers to a customer's own requests (an application's
status, a reconciliation act ready).

- Each notice has a code and a wording: Jinja templates (subject, plain text, HTML, a short SMS)
  whose defaults are in ``DEFAULTS`` below; staff may edit them (table ``notice_template``, the
  back office's «Шаблоны уведомлений»). They are rendered in a sandbox with undefined names
  refused, from plain values (strings, numbers, lists of dicts), never ORM objects; a wording
  that does not render with the sample values is refused when saved, and one that fails on
  real data falls back to the default rather than leave the customer uninformed.
- A notice on a topic of the profile (``NoticeTopic``: bills, readings, payments) goes to the
  channels the user chose and has a real contact for (push: a subscribed device,
  app.services.push); the answers to a customer's own request go by e-mail to the requester
  whatever the topics (never to a placeholder address), and by SMS to the requester's phone
  when the wording has an SMS text; a ready reconciliation act also goes to the requester's
  devices. A push carries the notice's title and its short ``push`` text (fixed wording, not
  edited by staff) and opens the notice's link.
- Paperless users get the bill's PDF attached to the «new bill» letter.
- Who to tell is one query per event, whatever the number of users; what was told is
  journaled in ``notice_log`` under a unique (code, user, object) key, claimed before sending,
  so a scheduled job run twice (or by two workers) tells nobody twice. A notice that reached
  no channel is forgotten, so the next run tries again.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup
from sqlalchemy import (
    String,
    and_,
    cast,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import (
    AccountBinding,
    ApplicationStatus,
    ContractApplication,
    Invoice,
    Meter,
    NoticeLog,
    NoticeTemplate,
    NoticeTopic,
    Payment,
    PersonalAccount,
    PortalUser,
    Premises,
    PushSubscription,
    Reading,
    ReconciliationAct,
    utcnow,
)
from app.services import ledger, periods, push, verification
from app.services.accounts import open_to_residents
from app.services.notify import send_notice
from app.services.periods import add_months
from app.services.russian import day_month, money, month_name

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/Moscow"
PDF_MIMETYPE = "application/pdf"
MAX_SUBJECT = 200
MAX_SMS = 400


class NoticeTemplateError(ValueError):
    """A wording staff cannot save; the message says why, in Russian."""


# ---------------------------------------------------------------------------------------------
# The wordings


@dataclass(frozen=True)
class Default:
    """A notice's default wording, what it is about and the values it may use."""

    title: str
    topic: str | None  # a NoticeTopic, or None: an answer to the customer's own request
    subject: str
    text: str
    html: str
    sms: str | None
    placeholders: Mapping[str, str]
    sample: Mapping[str, Any]
    #: The line of a push notice to a device (None: the subject).
    push: str | None = None


#: Values every notice may use.
COMMON_PLACEHOLDERS = {
    "name": "имя получателя (может быть пустым)",
    "portal_url": "адрес личного кабинета",
    "supplier_phone": "телефон контактного центра",
}
COMMON_SAMPLE = {"name": "Иван Петров", "portal_url": "https://lk.nesk.example",
                 "supplier_phone": "8-800-600-02-20"}

GREETING = "Здравствуйте{% if name %}, {{ name }}{% endif %}!"
HTML_GREETING = "<p>Здравствуйте{% if name %}, {{ name }}{% endif %}!</p>"

_ACCOUNT_LIST_TEXT = ("{% for a in accounts %}— лицевой счёт {{ a.number }}, {{ a.address }}: "
                      "{{ a.link }}\n{% endfor %}")
_ACCOUNT_LIST_HTML = ("<ul>{% for a in accounts %}<li>лицевой счёт {{ a.number }}, "
                      "{{ a.address }} — <a href=\"{{ a.link }}\">передать показания</a></li>"
                      "{% endfor %}</ul>")
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

DEFAULTS: dict[str, Default] = {
    "bill_ready": Default(
        title="Новый счёт",
        topic="bills",
        subject="Счёт за {{ period }} по лицевому счёту {{ account }}",
        text=GREETING + """

Готов счёт за {{ period }} по лицевому счёту {{ account }} ({{ address }}).
{% if to_pay %}К оплате: {{ amount_due }} руб. до {{ due_date }}.
{% else %}Оплачивать ничего не нужно: задолженности нет.
{% endif %}
{% if pdf_attached %}Счёт в формате PDF — во вложении к этому письму.
{% endif %}
Посмотреть счёт и оплатить его онлайн можно в личном кабинете: {{ link }}
""",
        html=HTML_GREETING + """
<p>Готов счёт за {{ period }} по лицевому счёту <b>{{ account }}</b> ({{ address }}).</p>
{% if to_pay %}<p>К оплате: <b>{{ amount_due }} руб.</b> до {{ due_date }}.</p>
{% else %}<p>Оплачивать ничего не нужно: задолженности нет.</p>{% endif %}
{% if pdf_attached %}<p>Счёт в формате PDF — во вложении к этому письму.</p>{% endif %}
<p><a href="{{ link }}">Посмотреть и оплатить счёт в личном кабинете</a></p>
""",
        sms="НЭСК: счёт за {{ period }} по л/с {{ account }}"
            "{% if to_pay %}, к оплате {{ amount_due }} руб. до {{ due_date }}{% endif %}.",
        push="Счёт за {{ period }} по л/с {{ account }}: {% if to_pay %}к оплате "
             "{{ amount_due }} руб. до {{ due_date }}{% else %}оплачивать ничего не нужно"
             "{% endif %}.",
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
    "reading_window_opened": Default(
        title="Начался приём показаний",
        topic="readings",
        subject="Пора передать показания счётчика за {{ period }}",
        text=GREETING + """

С {{ first_day }} по {{ last_day }} принимаются показания счётчиков за {{ period }}:
""" + _ACCOUNT_LIST_TEXT + """
Передать показания можно и без входа в личный кабинет — по номеру лицевого счёта и заводскому
номеру счётчика: {{ guest_link }}

Показания помогают начислить ровно столько, сколько вы израсходовали.
""",
        html=HTML_GREETING + """
<p>С {{ first_day }} по {{ last_day }} принимаются показания счётчиков за {{ period }}:</p>
""" + _ACCOUNT_LIST_HTML + """
<p>Передать показания можно и <a href="{{ guest_link }}">без входа в личный кабинет</a> — по
номеру лицевого счёта и заводскому номеру счётчика.</p>
<p>Показания помогают начислить ровно столько, сколько вы израсходовали.</p>
""",
        sms="НЭСК: с {{ first_day }} по {{ last_day }} передайте показания счётчика "
            "по л/с {{ numbers }}: {{ link }}",
        push="С {{ first_day }} по {{ last_day }} передайте показания счётчика по л/с "
             "{{ numbers }}.",
        placeholders=_ACCOUNTS_PLACEHOLDERS,
        sample=_ACCOUNTS_SAMPLE,
    ),
    "reading_window_closing": Default(
        title="Напоминание: показания ещё не переданы",
        topic="readings",
        subject="Передайте показания до {{ last_day }}, чтобы не платить по среднему",
        text=GREETING + """

Мы ещё не получили показания счётчика за {{ period }}:
""" + _ACCOUNT_LIST_TEXT + """
Показания принимаются до {{ last_day }} включительно. Если они не поступят, начисление за
{{ period }} будет выполнено по среднему потреблению или по нормативу — это может оказаться
больше, чем вы израсходовали на самом деле.

Передать показания без входа в личный кабинет: {{ guest_link }}
""",
        html=HTML_GREETING + """
<p>Мы ещё не получили показания счётчика за {{ period }}:</p>
""" + _ACCOUNT_LIST_HTML + """
<p>Показания принимаются до <b>{{ last_day }}</b> включительно. Если они не поступят,
начисление за {{ period }} будет выполнено <b>по среднему потреблению или по нормативу</b> —
это может оказаться больше, чем вы израсходовали на самом деле.</p>
<p><a href="{{ link }}">Передать показания в один клик</a> ·
<a href="{{ guest_link }}">без входа в личный кабинет</a></p>
""",
        sms="НЭСК: передайте показания по л/с {{ numbers }} до {{ last_day }}, иначе "
            "начисление будет по среднему или нормативу: {{ link }}",
        push="Передайте показания по л/с {{ numbers }} до {{ last_day }}, иначе начисление "
             "будет по среднему или нормативу.",
        placeholders=_ACCOUNTS_PLACEHOLDERS,
        sample=_ACCOUNTS_SAMPLE,
    ),
    "reading_window_closed": Default(
        title="Показания за месяц не поступили",
        topic="readings",
        subject="Показания за {{ period }} не поступили",
        text=GREETING + """

Приём показаний за {{ period }} завершился {{ last_day }}, а показания по этим лицевым счетам
не поступили:
""" + _ACCOUNT_LIST_TEXT + """
Начисление за {{ period }} будет выполнено по среднему потреблению или по нормативу. Когда вы
передадите показания, начисление пересчитаем по фактическому потреблению. Следующий приём
показаний — с {{ next_first_day }} по {{ next_last_day }}.
""",
        html=HTML_GREETING + """
<p>Приём показаний за {{ period }} завершился {{ last_day }}, а показания по этим лицевым
счетам не поступили:</p>
""" + _ACCOUNT_LIST_HTML + """
<p>Начисление за {{ period }} будет выполнено по среднему потреблению или по нормативу. Когда
вы передадите показания, начисление пересчитаем по фактическому потреблению. Следующий приём
показаний — с {{ next_first_day }} по {{ next_last_day }}.</p>
""",
        sms="НЭСК: показания за {{ period }} по л/с {{ numbers }} не поступили, начисление "
            "будет по среднему или нормативу. Следующий приём: с {{ next_first_day }} "
            "по {{ next_last_day }}.",
        push="Показания за {{ period }} по л/с {{ numbers }} не поступили: начисление будет "
             "по среднему или нормативу.",
        placeholders={**_ACCOUNTS_PLACEHOLDERS,
                      "next_first_day": "первый день следующего приёма показаний",
                      "next_last_day": "последний день следующего приёма показаний"},
        sample={**_ACCOUNTS_SAMPLE, "next_first_day": "15 ноября",
                "next_last_day": "25 ноября"},
    ),
    "payment_received": Default(
        title="Платёж получен",
        topic="payments",
        subject="Платёж на {{ total }} руб. получен",
        text=GREETING + """

Мы получили ваш платёж {{ paid_on }}:
{% for p in payments %}— {{ p.amount }} руб. на лицевой счёт {{ p.account }} ({{ p.address }})
{% endfor %}
Спасибо! Платёж учтён в балансе. История платежей — в личном кабинете: {{ link }}
""",
        html=HTML_GREETING + """
<p>Мы получили ваш платёж {{ paid_on }}:</p>
<ul>{% for p in payments %}<li>{{ p.amount }} руб. на лицевой счёт {{ p.account }}
({{ p.address }})</li>{% endfor %}</ul>
<p>Спасибо! Платёж учтён в балансе. <a href="{{ link }}">История платежей</a></p>
""",
        sms="НЭСК: платёж {{ total }} руб. по л/с {{ numbers }} получен. Спасибо!",
        push="Платёж {{ total }} руб. по л/с {{ numbers }} зачислен. Спасибо!",
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
    "high_bill": Default(
        title="Начисление заметно выше прошлогоднего",
        topic="bills",
        subject="{% if estimate %}Прогноз начисления{% else %}Начисление{% endif %} за "
                "{{ period }} заметно выше прошлогоднего",
        text=GREETING + """

{% if estimate %}По нашему прогнозу начисление{% else %}Начисление{% endif %} за {{ period }} по
лицевому счёту {{ account }} ({{ address }}) — {{ amount }} руб. Это {{ ratio }} больше, чем за
{{ last_year_period }} ({{ last_year_amount }} руб.).
{% if estimate %}Прогноз составлен {% if from_reading %}по переданным вами показаниям{% else %}по
среднему потреблению за последние месяцы{% endif %}.
{% endif %}
Что можно сделать:
— проверьте, верно ли переданы показания, и передавайте их каждый месяц {{ window }}: без
показаний начисление идёт по среднему потреблению или по нормативу;
— посмотрите график потребления в личном кабинете: {{ link }}
— проверьте приборы, которые работают постоянно: обогреватели, водонагреватели, тёплые полы.

Если вы считаете, что начисление ошибочно, позвоните нам: {{ supplier_phone }}.
""",
        html=HTML_GREETING + """
<p>{% if estimate %}По нашему прогнозу начисление{% else %}Начисление{% endif %} за {{ period }}
по лицевому счёту <b>{{ account }}</b> ({{ address }}) — <b>{{ amount }} руб.</b> Это
{{ ratio }} больше, чем за {{ last_year_period }} ({{ last_year_amount }} руб.).</p>
{% if estimate %}<p>Прогноз составлен {% if from_reading %}по переданным вами
показаниям{% else %}по среднему потреблению за последние месяцы{% endif %}.</p>{% endif %}
<p>Что можно сделать:</p>
<ul>
<li>проверьте, верно ли переданы показания, и передавайте их каждый месяц {{ window }}: без
показаний начисление идёт по среднему потреблению или по нормативу;</li>
<li>посмотрите <a href="{{ link }}">график потребления</a> в личном кабинете;</li>
<li>проверьте приборы, которые работают постоянно: обогреватели, водонагреватели, тёплые
полы.</li>
</ul>
<p>Если вы считаете, что начисление ошибочно, позвоните нам: {{ supplier_phone }}.</p>
""",
        sms="НЭСК: {% if estimate %}прогноз начисления{% else %}начисление{% endif %} за "
            "{{ period }} по л/с {{ account }} — {{ amount }} руб., {{ ratio }} больше, чем "
            "год назад. Подробнее: {{ link }}",
        push="{% if estimate %}Прогноз начисления{% else %}Начисление{% endif %} за "
             "{{ period }} по л/с {{ account }} — {{ amount }} руб., {{ ratio }} больше, чем "
             "год назад.",
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
    "application_status": Default(
        title="Изменился статус заявки на договор",
        topic=None,
        subject="Заявка № {{ number }}: {{ status }}",
        text=GREETING + """

Заявка № {{ number }} на заключение договора энергоснабжения: {{ status }}.
{% if rejected %}Причина: {{ reason }}
{% elif approved %}Сотрудник филиала свяжется с вами для подписания договора.
{% endif %}
{% if link %}Заявка в личном кабинете: {{ link }}
{% endif %}""",
        html=HTML_GREETING + """
<p>Заявка № {{ number }} на заключение договора энергоснабжения: <b>{{ status }}</b>.</p>
{% if rejected %}<p>Причина: {{ reason }}</p>
{% elif approved %}<p>Сотрудник филиала свяжется с вами для подписания договора.</p>{% endif %}
{% if link %}<p><a href="{{ link }}">Заявка в личном кабинете</a></p>{% endif %}
""",
        sms="НЭСК: заявка № {{ number }} на договор — {{ status }}."
            "{% if rejected %} Причина: {{ reason }}{% endif %}",
        placeholders={
            "number": "номер заявки", "status": "новый статус, например «на рассмотрении»",
            "approved": "заявка одобрена (да/нет)", "rejected": "заявка отклонена (да/нет)",
            "reason": "причина отказа", "link": "ссылка на заявку (пусто без личного кабинета)",
        },
        sample={"number": 17, "status": "отклонена", "approved": False, "rejected": True,
                "reason": "Нет выписки из ЕГРН на объект",
                "link": "https://lk.nesk.example/cabinet/applications/17"},
    ),
    "act_ready": Default(
        title="Акт сверки сформирован",
        topic=None,
        subject="Акт сверки по договору № {{ contract }} сформирован",
        text=GREETING + """

Акт сверки взаимных расчётов по договору № {{ contract }} ({{ organization }}) за период
с {{ date_from }} по {{ date_to }} сформирован.
{% if attached %}Акт в формате PDF — во вложении к этому письму.
{% endif %}
Скачать акт в формате Excel или PDF можно в личном кабинете организации: {{ link }}
""",
        html=HTML_GREETING + """
<p>Акт сверки взаимных расчётов по договору № {{ contract }} ({{ organization }}) за период
с {{ date_from }} по {{ date_to }} сформирован.</p>
{% if attached %}<p>Акт в формате PDF — во вложении к этому письму.</p>{% endif %}
<p><a href="{{ link }}">Скачать акт в личном кабинете организации</a> (Excel или PDF).</p>
""",
        sms=None,
        push="Акт сверки по договору № {{ contract }} за период с {{ date_from }} по "
             "{{ date_to }} готов.",
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
    "meter_verification_due": Default(
        title="Скоро истекает срок поверки счётчика",
        topic="readings",
        subject="Скоро истекает срок поверки {% if several %}счётчиков{% else %}счётчика"
                "{% endif %} № {{ serials }}",
        text=GREETING + """

{% if several %}
Скоро истекает срок поверки ваших счётчиков:
{% else %}
Скоро истекает срок поверки вашего счётчика:
{% endif %}
{% for m in meters %}
— счётчик № {{ m.serial }} (лицевой счёт {{ m.account }}, {{ m.address }}),
  поверка до {{ m.due }}. Подать заявку на поверку или замену: {{ m.link }}
{% endfor %}

Когда срок поверки истечёт, показания счётчика перестанут приниматься к расчёту: начисления
пойдут по среднему потреблению, затем по нормативу. Подайте заявку заранее, чтобы начисления
и дальше шли по показаниям.
""",
        html=HTML_GREETING + """
<p>{% if several %}Скоро истекает срок поверки ваших счётчиков:{% else %}Скоро истекает срок
поверки вашего счётчика:{% endif %}</p>
<ul>{% for m in meters %}<li>счётчик № {{ m.serial }} (лицевой счёт {{ m.account }},
{{ m.address }}): поверка до <b>{{ m.due }}</b> —
<a href="{{ m.link }}">подать заявку на поверку или замену</a></li>{% endfor %}</ul>
<p>Когда срок поверки истечёт, показания счётчика перестанут приниматься к расчёту: начисления
пойдут <b>по среднему потреблению, затем по нормативу</b>. Подайте заявку заранее, чтобы
начисления и дальше шли по показаниям.</p>
""",
        sms="НЭСК: срок поверки {% if several %}счётчиков № {{ serials }} истекает, ближайший "
            "— до {{ due }}{% else %}счётчика № {{ serials }} — до {{ due }}{% endif %}. "
            "Подайте заявку на поверку или замену: {{ link }}",
        push="Срок поверки {% if several %}счётчиков № {{ serials }} истекает, ближайший — до "
             "{{ due }}{% else %}счётчика № {{ serials }} — до {{ due }}{% endif %}. Подайте "
             "заявку на поверку или замену.",
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
    # Sent by app.services.signin_alerts, once per burst of failed sign-ins to an account.
    "signin_failures": Default(
        title="Неудачные попытки войти в личный кабинет",
        topic=None,
        subject="Кто-то пытался войти в ваш личный кабинет",
        text=GREETING + """

В ваш личный кабинет НЭСК несколько раз подряд пытались войти с неверным паролем.
Неудачных попыток: {{ attempts }}, последняя — {{ at }}.

Если это были вы, ничего делать не нужно.

Если это были не вы, кабинет под защитой: войти в него с незнакомого устройства теперь можно
только после дополнительной проверки. И всё же придумайте новый надёжный пароль
{% if link %}
в личном кабинете: {{ link }}
{% else %}
— для этого обратитесь в свой филиал.
{% endif %}
{% if by_code %}

Войти без пароля можно по одноразовому коду из SMS или письма: ссылка «Забыли пароль?» на
странице входа.
{% endif %}
""",
        html=HTML_GREETING + """
<p>В ваш личный кабинет НЭСК несколько раз подряд пытались войти с неверным паролем.
Неудачных попыток: <b>{{ attempts }}</b>, последняя — {{ at }}.</p>
<p>Если это были вы, ничего делать не нужно.</p>
<p>Если это были не вы, кабинет под защитой: войти в него с незнакомого устройства теперь
можно только после дополнительной проверки. И всё же придумайте новый надёжный пароль
{% if link %}<a href="{{ link }}">в личном кабинете</a>.{% else %}— для этого обратитесь
в свой филиал.{% endif %}</p>
{% if by_code %}<p>Войти без пароля можно по одноразовому коду из SMS или письма: ссылка
«Забыли пароль?» на странице входа.</p>{% endif %}
""",
        sms="НЭСК: в ваш личный кабинет пытались войти с неверным паролем (попыток: "
            "{{ attempts }}, последняя — {{ at }}). Если это не вы, смените пароль.",
        push="В ваш кабинет пытались войти с неверным паролем (попыток: {{ attempts }}, "
             "последняя — {{ at }}). Если это не вы, смените пароль.",
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


def default_wording(code: str) -> Wording:
    d = DEFAULTS[code]
    return Wording(d.subject, d.text, d.html, d.sms)


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
    for code, d in DEFAULTS.items():
        row = rows.get(code)
        if row is None:
            session.add(NoticeTemplate(code=code, title=d.title, subject=d.subject,
                                       text_body=d.text, html_body=d.html, sms_body=d.sms))
            changed += 1
        elif row.updated_at is None and (row.title, row.subject, row.text_body, row.html_body,
                                         row.sms_body) != (d.title, d.subject, d.text, d.html,
                                                           d.sms):
            row.title, row.subject, row.text_body = d.title, d.subject, d.text
            row.html_body, row.sms_body = d.html, d.sms
            changed += 1
    if changed:
        session.commit()
    return changed


def reset_template(session: Session, template: NoticeTemplate) -> None:
    """Back to the default wording (and to following it when the defaults change)."""
    d = DEFAULTS[template.code]
    template.subject, template.text_body, template.html_body = d.subject, d.text, d.html
    template.sms_body, template.updated_at, template.updated_by_id = d.sms, None, None
    session.commit()


# ---------------------------------------------------------------------------------------------
# Rendering in the sandbox

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                 trim_blocks=True, lstrip_blocks=True)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True)
PARTS = {"subject": "тема", "text": "текст письма", "html": "HTML-версия", "sms": "текст SMS"}


def placeholders(code: str) -> dict[str, str]:
    return {**COMMON_PLACEHOLDERS, **DEFAULTS[code].placeholders}


def sample_values(code: str) -> dict[str, Any]:
    return {**COMMON_SAMPLE, **DEFAULTS[code].sample}


def _render_parts(w: Wording, values: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    subject = " ".join(_text_env.from_string(w.subject).render(values).split())
    text = _tidy(_text_env.from_string(w.text).render(values))
    html = _html_env.from_string(w.html).render(values).strip()
    sms = " ".join(_text_env.from_string(w.sms).render(values).split()) if w.sms else None
    return subject, text, html, sms or None


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
    if code not in DEFAULTS:
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
    topic = DEFAULTS[code].topic
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


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class Recipient:
    user_id: int | None
    name: str
    email: str | None  # None: not by e-mail
    phone: str | None  # None: not by SMS
    push: bool = False  # to the user's subscribed devices, if any


@dataclass
class Outgoing:
    """One notice to one recipient, about the objects ``keys`` (journaled each)."""

    recipient: Recipient
    keys: list[str]
    values: dict[str, Any]
    #: Attachments of the e-mail, made only once the notice is claimed.
    attach: Callable[[], tuple[tuple[str, str, bytes], ...]] | None = None
    channels: list[str] = field(default_factory=list)


def _config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return config if config is not None else current_app.config


def _name(user: PortalUser) -> str:
    return " ".join(p for p in ((user.first_name or "").strip(), (user.last_name or "").strip())
                    if p)


def topic_recipient(user: PortalUser, topic: str) -> Recipient:
    """Where a notice on ``topic`` may go: the channels the user chose and can be reached on
    (for push, the devices are looked up when sending)."""
    return Recipient(user.id, _name(user),
                     user.deliverable_email if user.wants_notice(topic, "email") else None,
                     user.phone if user.wants_notice(topic, "sms") else None,
                     user.wants_notice(topic, "push"))


def _wants_any(topic: str):
    """SQL: the user takes notices on ``topic`` by at least one channel they can be reached on."""
    by_email = getattr(PortalUser, f"notify_{topic}_email")
    by_sms = getattr(PortalUser, f"notify_{topic}_sms")
    by_push = getattr(PortalUser, f"notify_{topic}_push")
    has_device = exists().where(PushSubscription.user_id == PortalUser.id)
    return and_(PortalUser.active.is_(True),
                or_(and_(by_email.is_(True), PortalUser.email_is_placeholder.is_(False)),
                    and_(by_sms.is_(True), PortalUser.phone.isnot(None)),
                    and_(by_push.is_(True), has_device)))


def _not_told(code: str, key) -> Any:
    """SQL: the user has not been told ``code`` about ``key`` (a string or an expression)."""
    return ~exists().where(NoticeLog.code == code, NoticeLog.user_id == PortalUser.id,
                           NoticeLog.object_key == key)


def _key(prefix: str, column) -> Any:
    return literal(f"{prefix}:") + cast(column, String)


def _claim(session: Session, code: str, batch: list[Outgoing]) -> list[tuple[Outgoing, list[int]]]:
    """Journal the notices before sending; those another run journaled first are dropped."""
    for attempt in range(2):
        rows = [{"code": code, "user_id": out.recipient.user_id, "object_key": key,
                 "sent_at": utcnow()} for out in batch for key in out.keys]
        if not rows:
            return []
        try:
            ids = session.scalars(insert(NoticeLog).returning(NoticeLog.id,
                                                              sort_by_parameter_order=True),
                                  rows).all()
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt:
                return []
            taken = set(session.execute(
                select(NoticeLog.user_id, NoticeLog.object_key).where(
                    NoticeLog.code == code,
                    NoticeLog.user_id.in_(list({o.recipient.user_id for o in batch})))).all())
            batch = [o for o in batch
                     if not any((o.recipient.user_id, k) in taken for k in o.keys)]
            continue
        claimed, position = [], 0
        for out in batch:
            claimed.append((out, list(ids[position:position + len(out.keys)])))
            position += len(out.keys)
        return claimed
    return []


def deliver(session: Session, code: str, batch: list[Outgoing],
            config: Mapping[str, Any] | None = None) -> int:
    """Claim, render and send a batch of notices of one kind; returns how many reached the
    recipient on at least one channel."""
    if not batch:
        return 0
    config = _config(config)
    claimed = _claim(session, code, batch)
    if not claimed:
        return 0
    staff_wording, fallback = wording(session, code), default_wording(code)
    common = {"portal_url": portal_url(config), "supplier_phone": config.get("SUPPLIER_PHONE", "")}
    pushes: list[tuple[Outgoing, tuple[int, push.PushContent]]] = []
    for out, _log_ids in claimed:
        values = {**common, "name": out.recipient.name, **out.values}
        try:
            letter = compose(code, staff_wording, values, config)
        except Exception:  # staff's wording failed on real data: never leave them untold
            log.exception("notice template %s failed on real data: the default is used", code)
            letter = compose(code, fallback, values, config)
        if out.recipient.email:
            attachments = ()
            if out.attach is not None:
                try:
                    attachments = out.attach()
                except Exception:
                    log.exception("attachment of notice %s failed: sent without it", code)
            if send_notice("email", out.recipient.email, letter.subject, letter.text,
                           html=letter.html, attachments=attachments):
                out.channels.append("email")
        if out.recipient.phone and letter.sms:
            if send_notice("sms", out.recipient.phone, letter.subject, letter.sms):
                out.channels.append("sms")
        if out.recipient.push and out.recipient.user_id is not None:
            pushes.append((out, (out.recipient.user_id, push_content(code, letter, values))))
    for position in push.send(session, [notice for _, notice in pushes]):
        pushes[position][0].channels.append("push")
    outcome: dict[str, list[int]] = defaultdict(list)
    for out, log_ids in claimed:
        outcome[",".join(out.channels)].extend(log_ids)
    for channels, ids in outcome.items():
        if not channels:  # reached nobody: forget it, the next run tries again
            session.execute(delete(NoticeLog).where(NoticeLog.id.in_(ids)))
        else:
            session.execute(update(NoticeLog).where(NoticeLog.id.in_(ids))
                            .values(channels=channels))
    session.commit()
    return sum(1 for out, _ in claimed if out.channels)


def push_content(code: str, letter: Letter, values: Mapping[str, Any]) -> push.PushContent:
    """The notice on a device: its title, its short push line (the subject when it has none
    or it fails), and the page of its link, on the portal's own address."""
    d = DEFAULTS[code]
    body = letter.subject
    if d.push:
        try:
            body = " ".join(_text_env.from_string(d.push).render(values).split()) or body
        except Exception:  # a value missing in real data: the subject still says it
            log.exception("push text of notice %s failed: the subject is used", code)
    link = urlsplit(str(values.get("link") or ""))
    url = (link.path or "/") + (f"?{link.query}" if link.query else "")
    return push.PushContent(d.title, body, url)


# ---------------------------------------------------------------------------------------------
# Dates and links


def local_today(config: Mapping[str, Any] | None = None) -> dt.date:
    return periods.local_today(_config(config))


def portal_url(config: Mapping[str, Any]) -> str:
    return str(config.get("PORTAL_URL") or "").rstrip("/")


def _window(config: Mapping[str, Any]) -> tuple[int, int]:
    from app.services.readings import Rules

    window = Rules.from_config(config).window
    return window.first_day, window.last_day


def _last_year(period: dt.date) -> dt.date:
    return add_months(period, -12)


def _times(ratio: Decimal) -> str:
    """1.8 -> «в 1,8 раза»; 2 -> «в 2 раза»."""
    value = ratio.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = f"{value.normalize():f}".replace(".", ",")
    return f"в {text} раза"


# ---------------------------------------------------------------------------------------------
# A new bill


def bill_ready(session: Session, period: dt.date, config: Mapping[str, Any] | None = None) -> int:
    """Tell everyone bound to an account invoiced for ``period`` that the bill is ready; a
    paperless user gets the bill's PDF attached. One query finds them all."""
    from app.services.bill_documents import bill_pdf

    config = _config(config)
    code = "bill_ready"
    rows = session.execute(
        select(PortalUser, PersonalAccount, Premises, Invoice)
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Invoice, Invoice.account_id == PersonalAccount.id)
        .where(Invoice.period == period, open_to_residents(), _wants_any("bills"),
               _not_told(code, _key("invoice", Invoice.id)))
        .order_by(Invoice.id, PortalUser.id)).all()
    base = portal_url(config)
    pdfs: dict[int, bytes] = {}

    def attach_for(invoice: Invoice, account: PersonalAccount):
        def make():
            if invoice.id not in pdfs:  # one rendering per bill, shared by a family
                pdfs[invoice.id] = bill_pdf(session, invoice, config)
            return ((f"Счёт_{account.number}_{invoice.period:%Y-%m}.pdf", PDF_MIMETYPE,
                     pdfs[invoice.id]),)
        return make

    batch = []
    for user, account, premises, invoice in rows:
        recipient = topic_recipient(user, "bills")
        paperless = bool(user.paperless and recipient.email)
        batch.append(Outgoing(recipient, [f"invoice:{invoice.id}"], {
            "period": month_name(invoice.period), "account": account.number,
            "address": premises.address, "amount_due": money(max(invoice.amount_due, Decimal(0))),
            "to_pay": invoice.amount_due > 0, "due_date": f"{invoice.due_date:%d.%m.%Y}",
            "pdf_attached": paperless, "link": f"{base}/cabinet/bills/{account.id}",
        }, attach_for(invoice, account) if paperless else None))
    return deliver(session, code, batch, config)


def bills_ready_recently(session: Session, today: dt.date,
                         config: Mapping[str, Any] | None = None) -> int:
    """The scheduled run: bills of last month and of this month not yet announced."""
    this = today.replace(day=1)
    return sum(bill_ready(session, period, config) for period in (add_months(this, -1), this))


# ---------------------------------------------------------------------------------------------
# The reading window


def _without_reading(session: Session, code: str, period: dt.date) -> list[tuple]:
    """(user, account, premises) of active accounts with an active meter and no reading of
    ``period`` yet, whose users take reading notices and were not told ``code`` this period."""
    has_meter = exists().where(Meter.account_id == PersonalAccount.id, Meter.active.is_(True))
    has_reading = exists().where(Reading.meter_id == Meter.id,
                                 Meter.account_id == PersonalAccount.id,
                                 Reading.period == period, Reading.status != "rejected")
    return session.execute(
        select(PortalUser, PersonalAccount, Premises)
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .where(PersonalAccount.status == "active", open_to_residents(), has_meter,
               ~has_reading, _wants_any("readings"),
               _not_told(code, f"period:{period:%Y-%m}"))
        .order_by(PortalUser.id, PersonalAccount.number)).all()


def _per_user(rows: list[tuple], period: dt.date, config: Mapping[str, Any],
              extra: dict[str, Any]) -> list[Outgoing]:
    """One notice per user listing their accounts, each with its one-click readings link."""
    base = portal_url(config)
    first, last = _window(config)
    users: dict[int, PortalUser] = {}
    accounts: dict[int, list[dict]] = defaultdict(list)
    for user, account, premises in rows:
        users[user.id] = user
        accounts[user.id].append({"number": account.number, "address": premises.address,
                                  "link": f"{base}/cabinet/readings/{account.id}"})
    batch = []
    for user_id, user in users.items():
        own = accounts[user_id]
        batch.append(Outgoing(topic_recipient(user, "readings"), [f"period:{period:%Y-%m}"], {
            "period": month_name(period),
            "first_day": day_month(period.replace(day=first)),
            "last_day": day_month(period.replace(day=last)),
            "accounts": own, "numbers": ", ".join(a["number"] for a in own),
            "link": own[0]["link"] if len(own) == 1 else f"{base}/cabinet/",
            "guest_link": f"{base}/readings/", **extra}))
    return batch


def reading_window_due(event: str, today: dt.date, config: Mapping[str, Any]) -> bool:
    """Whether the reading-window notice ``event`` is due on ``today`` (a missed day is made
    up later within the same stretch of days)."""
    first, last = _window(config)
    if event == "opened":
        return first <= today.day <= last
    if event == "closing":
        days = int(config.get("NOTICE_READING_WARNING_DAYS", 3))
        return max(first, last - days) <= today.day <= last
    if event == "closed":
        return today.day > last
    raise ValueError(event)


def reading_window_opened(session: Session, today: dt.date,
                          config: Mapping[str, Any] | None = None) -> int:
    """The window is open: tell those who have not yet sent this month's reading."""
    return _window_notice(session, "opened", today, _config(config))


def reading_window_closing_warning(session: Session, today: dt.date,
                                   config: Mapping[str, Any] | None = None) -> int:
    """A few days before the window closes: without a reading the month is billed by average
    or by norm; a one-click link to submit."""
    return _window_notice(session, "closing", today, _config(config))


def reading_window_closed_without_reading(session: Session, today: dt.date,
                                          config: Mapping[str, Any] | None = None) -> int:
    """The window closed and no reading came: the month goes by average or by norm."""
    config = _config(config)
    first, last = _window(config)
    following = add_months(today.replace(day=1), 1)
    return _window_notice(session, "closed", today, config, {
        "next_first_day": day_month(following.replace(day=first)),
        "next_last_day": day_month(following.replace(day=last))})


def _window_notice(session: Session, event: str, today: dt.date, config: Mapping[str, Any],
                   extra: dict | None = None) -> int:
    """One of the reading window's notices (``reading_window_<event>``), on its day, to
    those without this month's reading."""
    if not reading_window_due(event, today, config):
        return 0
    period = today.replace(day=1)
    code = f"reading_window_{event}"
    return deliver(session, code, _per_user(_without_reading(session, code, period), period,
                                            config, extra or {}), config)


# ---------------------------------------------------------------------------------------------
# Payments


def payment_received(session: Session, payment_ids: Iterable[int],
                     config: Mapping[str, Any] | None = None) -> int:
    """Tell the users bound to the accounts credited by these (succeeded) payments: one notice
    per user, whatever the number of accounts the payment was split between."""
    config = _config(config)
    ids = sorted({int(i) for i in payment_ids})
    if not ids:
        return 0
    code = "payment_received"
    rows = session.execute(
        select(PortalUser, Payment, PersonalAccount, Premises, ledger.paid_on())
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Payment, Payment.account_id == PersonalAccount.id)
        .where(Payment.id.in_(ids), ledger.credited(), open_to_residents(),
               _wants_any("payments"), _not_told(code, _key("payment", Payment.id)))
        .order_by(PortalUser.id, Payment.id)).all()
    tz = ZoneInfo(config.get("BABEL_DEFAULT_TIMEZONE") or DEFAULT_TZ)
    users: dict[int, PortalUser] = {}
    parts: dict[int, list[tuple[Payment, PersonalAccount, Premises]]] = defaultdict(list)
    paid_on: dict[int, dt.datetime] = {}
    for user, payment, account, premises, at in rows:
        users[user.id] = user
        parts[user.id].append((payment, account, premises))
        paid_on[user.id] = max(at, paid_on.get(user.id, at))
    batch = []
    for user_id, user in users.items():
        own = parts[user_id]
        paid_at = paid_on[user_id]
        if paid_at.tzinfo is None:
            paid_at = paid_at.replace(tzinfo=dt.timezone.utc)
        batch.append(Outgoing(topic_recipient(user, "payments"),
                              [f"payment:{p.id}" for p, _, _ in own], {
            "paid_on": f"{paid_at.astimezone(tz):%d.%m.%Y}",
            "total": money(sum((p.amount for p, _, _ in own), Decimal("0.00"))),
            "payments": [{"account": a.number, "address": pr.address, "amount": money(p.amount)}
                         for p, a, pr in own],
            "numbers": ", ".join(dict.fromkeys(a.number for _, a, _ in own)),
            "link": f"{portal_url(config)}/cabinet/payments/",
        }))
    return deliver(session, code, batch, config)


# ---------------------------------------------------------------------------------------------
# High bills


def high_bill_alert(session: Session, today: dt.date,
                    config: Mapping[str, Any] | None = None) -> int:
    """Warn when a month's charge (or, before the bill, the forecast) of an account is well
    above the same month last year (HIGH_BILL_RATIO): for last month once billed, and for this
    month. A fixed number of queries whatever the number of accounts."""
    from app.services import forecast

    config = _config(config)
    ratio = Decimal(str(config.get("HIGH_BILL_RATIO", "1.5")))
    this = today.replace(day=1)
    code = "high_bill"
    first, last = _window(config)
    base = portal_url(config)
    batch = []
    for period in (add_months(this, -1), this):
        year_ago = ledger.charged(period=_last_year(period))
        now = ledger.charged(period=period)
        key = literal("account:") + cast(PersonalAccount.id, String) + literal(
            f":{period:%Y-%m}")
        rows = session.execute(
            select(PortalUser, PersonalAccount, Premises, year_ago.c.amount, now.c.amount)
            .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
            .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
            .join(Premises, Premises.id == PersonalAccount.premises_id)
            .join(year_ago, year_ago.c.account_id == PersonalAccount.id)
            .outerjoin(now, now.c.account_id == PersonalAccount.id)
            .where(PersonalAccount.status == "active", open_to_residents(),
                   year_ago.c.amount > 0, _wants_any("bills"), _not_told(code, key))
            .order_by(PortalUser.id, PersonalAccount.id)).all()
        predicted: dict[int, forecast.Forecast] = {}
        unbilled = {a.id: a for _, a, _, _, charged in rows if charged is None}
        if period == this and unbilled:
            meters = list(session.execute(
                select(Meter).where(Meter.account_id.in_(unbilled), Meter.active.is_(True))
            ).scalars())
            predicted = forecast.for_accounts(session, list(unbilled.values()), meters, today)
        for user, account, premises, last_year, charged in rows:
            estimate = charged is None
            if estimate and account.id not in predicted:
                continue
            amount = Decimal(charged) if not estimate else predicted[account.id].amount
            amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            last_year = Decimal(last_year).quantize(Decimal("0.01"))
            if amount <= last_year * ratio:
                continue
            batch.append(Outgoing(topic_recipient(user, "bills"),
                                  [f"account:{account.id}:{period:%Y-%m}"], {
                "period": month_name(period), "account": account.number,
                "address": premises.address, "amount": money(amount),
                "last_year_period": month_name(_last_year(period)),
                "last_year_amount": money(last_year), "ratio": _times(amount / last_year),
                "estimate": estimate,
                "from_reading": bool(estimate and predicted[account.id].from_reading),
                "window": f"с {first} по {last} число",
                "link": f"{base}/cabinet/consumption/",
            }))
    return deliver(session, code, batch, config)


# ---------------------------------------------------------------------------------------------
# Answers to a customer's own requests


def _requester(user: PortalUser) -> Recipient:
    """The requester's real e-mail (never a placeholder) and phone, whatever the topics."""
    return Recipient(user.id, _name(user), user.deliverable_email, user.phone)


def application_status_changed(session: Session, application_id: int,
                               config: Mapping[str, Any] | None = None) -> int:
    """The applicant learns the new status of their application (and a rejection's reason)."""
    config = _config(config)
    application = session.get(ContractApplication, application_id)
    if application is None:
        return 0
    user = application.user
    recipient = (_requester(user) if user is not None else
                 Recipient(None, application.applicant_name, application.email,
                           application.phone))
    status = application.status
    return deliver(session, "application_status", [Outgoing(
        recipient, [f"application:{application.id}:{status}"], {
            "number": application.id, "status": ApplicationStatus.label(status).lower(),
            "approved": status == "approved", "rejected": status == "rejected",
            "reason": application.staff_comment or "",
            "link": (f"{portal_url(config)}/cabinet/applications/{application.id}"
                     if user is not None else ""),
        })], config)


def act_ready(session: Session, act_id: int, config: Mapping[str, Any] | None = None) -> int:
    """The organization's user who asked for a reconciliation act learns it is ready: by
    e-mail with the act attached as PDF (a large act, built in the background, only by the
    link: it is not laid out inside finance's request), and on the devices they subscribed
    to notices."""
    from app.services import act_jobs, acts

    config = _config(config)
    act = session.get(ReconciliationAct, act_id)
    if act is None or act.status != "ready" or act.requested_by is None:
        return 0
    user = act.requested_by
    recipient = Recipient(user.id, _name(user), user.deliverable_email, None, push=True)
    attached = "pdf" in acts.formats() and (
        act_jobs.count_rows(session, act, config) <= act_jobs.inline_rows_max(config))

    def attach():
        stream, mimetype, filename = acts.render(session, act, "pdf", config)
        with stream:
            return ((filename, mimetype, stream.read()),)

    return deliver(session, "act_ready", [Outgoing(recipient, [f"act:{act.id}"], {
        "contract": act.contract.number, "organization": act.organization.name,
        "date_from": f"{act.date_from:%d.%m.%Y}", "date_to": f"{act.date_to:%d.%m.%Y}",
        "attached": attached, "link": f"{portal_url(config)}/business/acts/",
    }, attach if attached else None)], config)


# ---------------------------------------------------------------------------------------------
# Scheduled runs (Celery beat, `flask notices send <event>`)

#: Event name -> the run for a local day. Each is safe to run again: nobody is told twice.
SCHEDULED: dict[str, Callable[[Session, dt.date, Mapping[str, Any] | None], int]] = {
    "bill-ready": bills_ready_recently,
    "reading-window-opened": reading_window_opened,
    "reading-window-closing": reading_window_closing_warning,
    "reading-window-closed": reading_window_closed_without_reading,
    "high-bill": high_bill_alert,
    "meter-verification-due": verification.meter_verification_due,
}


def run_scheduled(session: Session, event: str, today: dt.date | None = None,
                  config: Mapping[str, Any] | None = None) -> int:
    config = _config(config)
    return SCHEDULED[event](session, today or local_today(config), config)
