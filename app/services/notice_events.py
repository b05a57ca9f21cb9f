"""What each event notice tells and to whom: a new bill, the reading window (open, closing
soon, closed without a reading), a payment received, a high bill, and the answers to a
customer's own requests (an application's status, a reconciliation act ready). The scheduled
ones are in ``SCHEDULED`` (Celery beat, `flask notices send <event>`).

Who to tell is one query per event, whatever the number of users; app.services.notices sends
them and journals what was told, so a run repeated tells nobody twice. Paperless users get the
bill's PDF attached to the «new bill» letter; a ready reconciliation act also goes to the
requester's devices.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, exists, literal, select
from sqlalchemy.orm import Session

from app.models import (
    AccountBinding,
    ApplicationKind,
    ApplicationStatus,
    ContractApplication,
    Invoice,
    Meter,
    Payment,
    PersonalAccount,
    PortalUser,
    Premises,
    Reading,
    ReconciliationAct,
)
from app.services import act_jobs, acts, forecast, ledger, periods, verification
from app.services.accounts import open_to_residents
from app.services.bill_documents import bill_pdf
from app.services.notices import (
    DEFAULT_TZ,
    Outgoing,
    Recipient,
    app_config,
    deliver,
    full_name,
    not_told,
    object_key,
    portal_url,
    requester,
    topic_recipient,
    wants_any,
)
from app.services.periods import add_months
from app.services.readings import Rules
from app.services.russian import day_month, money, month_name

PDF_MIMETYPE = "application/pdf"


# ---------------------------------------------------------------------------------------------
# Dates


def local_today(config: Mapping[str, Any] | None = None) -> dt.date:
    return periods.local_today(app_config(config))


def _window(config: Mapping[str, Any]) -> tuple[int, int]:
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
    config = app_config(config)
    code = "bill_ready"
    rows = session.execute(
        select(PortalUser, PersonalAccount, Premises, Invoice)
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Invoice, Invoice.account_id == PersonalAccount.id)
        .where(Invoice.period == period, open_to_residents(), wants_any("bills"),
               not_told(code, object_key("invoice", Invoice.id)))
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
               ~has_reading, wants_any("readings"),
               not_told(code, f"period:{period:%Y-%m}"))
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
    return _window_notice(session, "opened", today, app_config(config))


def reading_window_closing_warning(session: Session, today: dt.date,
                                   config: Mapping[str, Any] | None = None) -> int:
    """A few days before the window closes: without a reading the month is billed by average
    or by norm; a one-click link to submit."""
    return _window_notice(session, "closing", today, app_config(config))


def reading_window_closed_without_reading(session: Session, today: dt.date,
                                          config: Mapping[str, Any] | None = None) -> int:
    """The window closed and no reading came: the month goes by average or by norm."""
    config = app_config(config)
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
    config = app_config(config)
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
               wants_any("payments"), not_told(code, object_key("payment", Payment.id)))
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
    config = app_config(config)
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
                   year_ago.c.amount > 0, wants_any("bills"), not_told(code, key))
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
# ---------------------------------------------------------------------------------------------
# Answers to a customer's own requests


def application_status_changed(session: Session, application_id: int,
                               config: Mapping[str, Any] | None = None) -> int:
    """The applicant learns the new status of their application (and a rejection's reason)."""
    config = app_config(config)
    application = session.get(ContractApplication, application_id)
    if application is None:
        return 0
    user = application.user
    recipient = (requester(user) if user is not None else
                 Recipient(None, application.applicant_name, application.email,
                           application.phone))
    status = application.status
    return deliver(session, "application_status", [Outgoing(
        recipient, [f"application:{application.id}:{status}"], {
            "number": application.id, "status": ApplicationStatus.label(status).lower(),
            "kind": ApplicationKind.label(application.kind),
            "verification": application.kind == verification.APPLICATION_KIND,
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
    config = app_config(config)
    act = session.get(ReconciliationAct, act_id)
    if act is None or act.status != "ready" or act.requested_by is None:
        return 0
    user = act.requested_by
    recipient = Recipient(user.id, full_name(user), user.deliverable_email, None, push=True)
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


def meter_verification_due(session: Session, today: dt.date,
                           config: Mapping[str, Any] | None = None) -> int:
    """Tell the residents bound to an account whose active meter's verification date is within
    METER_VERIFICATION_WARN_DAYS (and not yet past) that it is time to apply: one notice per
    user listing their meters, each meter once per date. One query finds them all."""
    config = app_config(config)
    key = (literal("meter:") + cast(Meter.id, String) + literal(":")
           + cast(Meter.verification_due, String))
    rows = session.execute(
        select(PortalUser, PersonalAccount, Premises, Meter)
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Meter, Meter.account_id == PersonalAccount.id)
        .where(PersonalAccount.status == "active", open_to_residents(), Meter.active.is_(True),
               verification.due_clause(Meter.verification_due, today,
                                       verification.warn_days(config)),
               ~verification.overdue_clause(Meter.verification_due, today),
               wants_any("readings"), not_told(verification.NOTICE_CODE, key))
        .order_by(PortalUser.id, Meter.verification_due, Meter.serial)).all()
    base = portal_url(config)
    users: dict[int, PortalUser] = {}
    meters: dict[int, list[tuple[PersonalAccount, Premises, Meter]]] = defaultdict(list)
    for user, account, premises, meter in rows:
        users[user.id] = user
        meters[user.id].append((account, premises, meter))
    batch = []
    for user_id, user in users.items():
        own = [{"serial": meter.serial, "account": account.number, "address": premises.address,
                "due": f"{meter.verification_due:%d.%m.%Y}",
                "link": base + verification.application_path(meter.id)}
               for account, premises, meter in meters[user_id]]
        batch.append(Outgoing(
            topic_recipient(user, "readings"),
            [verification.notice_key(meter.id, meter.verification_due)
             for _, _, meter in meters[user_id]], {
                "meters": own, "several": len(own) > 1, "due": own[0]["due"],
                "serials": ", № ".join(m["serial"] for m in own),
                "link": own[0]["link"] if len(own) == 1 else f"{base}/cabinet/"}))
    return deliver(session, verification.NOTICE_CODE, batch, config)


# ---------------------------------------------------------------------------------------------
# Scheduled runs (Celery beat, `flask notices send <event>`)

#: Event name -> the run for a local day. Each is safe to run again: nobody is told twice.
SCHEDULED: dict[str, Callable[[Session, dt.date, Mapping[str, Any] | None], int]] = {
    "bill-ready": bills_ready_recently,
    "reading-window-opened": reading_window_opened,
    "reading-window-closing": reading_window_closing_warning,
    "reading-window-closed": reading_window_closed_without_reading,
    "high-bill": high_bill_alert,
    "meter-verification-due": meter_verification_due,
}


def run_scheduled(session: Session, event: str, today: dt.date | None = None,
                  config: Mapping[str, Any] | None = None) -> int:
    config = app_config(config)
    return SCHEDULED[event](session, today or local_today(config), config)
