"""Mailings (рассылки): choosing the recipients, composing each personal message, and
delivering them in chunks from Celery tasks.

The recipients are fixed when the mailing is queued (one ``mailing_recipient`` row each, by
one INSERT ... SELECT). A delivery task claims a chunk of due rows under its own task id,
opens one connection of the bulk mailer for the chunk, and marks each row sent the moment the
server accepts its message; a task that died is redelivered by Celery with the same id and
resends only its rows that were never accepted. Temporary refusals (4xx, a dropped
connection) are retried with a growing pause; permanent ones (5xx) are «bounced».

The letters themselves are app.services.mailing_letters'; the unsubscribe link,
app.services.mailing_unsubscribe's.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import exists, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import Session

from app.models import (
    AccountBinding,
    Branch,
    Mailing,
    MailingRecipient,
    Meter,
    PersonalAccount,
    PortalUser,
    Reading,
    TariffGroup,
    utcnow,
)
from app.services import audit, dispatch, ledger
from app.services.accounts import open_to_residents
from app.services.mailing_letters import PLACEHOLDERS, SAMPLE, SANDBOX, Composer, Letter
from app.services.russian import money

if TYPE_CHECKING:
    from app.plugins.interfaces import BulkMailer

log = logging.getLogger(__name__)


class MailingError(ValueError):
    """A mailing cannot do what was asked; the text is for staff."""


# The bulk mailer a plugin offers ---------------------------------------------------------------


class TemporaryFailure(Exception):
    """The server refused for now (4xx): try the message again later."""


class PermanentFailure(Exception):
    """The server refused for good (5xx): the address is «bounced»."""


class ConnectionLost(Exception):
    """The connection broke: the rest of the chunk goes back to the queue."""


# Who receives it ---------------------------------------------------------------------------


def recipients_query(mailing: Mailing, period: dt.date):
    """One row per resident the mailing goes to: (user_id, email, name, account, debt), the
    account being the lowest-numbered matching one and the debt the matching accounts' sum.
    Only residents with a real e-mail who take mailings and have not withdrawn consent."""
    debts = ledger.totals().subquery()
    conditions = [
        PortalUser.kind == "resident",
        PortalUser.active.is_(True),
        PortalUser.email_is_placeholder.is_(False),
        PortalUser.mailing_opt_out.is_(False),
        PortalUser.pd_consent_withdrawn_at.is_(None),
        PersonalAccount.status == "active",
        open_to_residents(),
    ]
    if mailing.branch_id is not None:
        conditions.append(PersonalAccount.branch_id == mailing.branch_id)
    if mailing.tariff_group_id is not None:
        conditions.append(PersonalAccount.tariff_group_id == mailing.tariff_group_id)
    if mailing.min_debt is not None:
        conditions.append(debts.c.balance > mailing.min_debt)
    if mailing.without_reading:
        read = (select(Meter.id).join(Reading, Reading.meter_id == Meter.id)
                .where(Meter.account_id == PersonalAccount.id, Reading.period == period,
                       Reading.status != "rejected"))
        conditions.append(~exists(read))
    name = func.trim(func.coalesce(PortalUser.first_name, "") + literal(" ")
                     + func.coalesce(PortalUser.last_name, ""))
    return (select(PortalUser.id.label("user_id"), func.min(PortalUser.email).label("email"),
                   func.min(name).label("name"), func.min(PersonalAccount.number).label("account"),
                   func.sum(debts.c.balance).label("debt"))
            .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
            .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
            .join(debts, debts.c.account_id == PersonalAccount.id)
            .where(*conditions).group_by(PortalUser.id))


def describe_segment(session: Session, mailing: Mailing) -> str:
    """The segment in words, as the mailing's list shows it."""
    parts = ["жители с электронной почтой"]
    if mailing.branch_id is not None:
        parts.append(f"филиал «{session.get(Branch, mailing.branch_id).name}»")
    if mailing.tariff_group_id is not None:
        parts.append(f"группа «{session.get(TariffGroup, mailing.tariff_group_id).name}»")
    if mailing.min_debt is not None:
        parts.append(f"задолженность более {money(mailing.min_debt)} руб.")
    if mailing.without_reading:
        parts.append("без показаний за текущий месяц")
    return "; ".join(parts)


# Composing ---------------------------------------------------------------------------------



def check_template(subject: str, body: str) -> None:
    """Refuse a text that would not render for a recipient, with the reason in Russian."""
    try:
        for source in (subject, body):
            SANDBOX.from_string(source).render(**SAMPLE)
    except TemplateError as exc:
        known = ", ".join("{{ %s }}" % k for k in PLACEHOLDERS)
        raise MailingError(f"Текст не получится подставить: {exc}. Можно использовать: "
                           f"{known}.") from None


def preview(session: Session, mailing: Mailing, period: dt.date) -> tuple[int, Letter | None]:
    """How many residents the mailing would reach now, and the letter of the first one."""
    check_template(mailing.subject, mailing.body)
    query = recipients_query(mailing, period).subquery()
    count = session.execute(select(func.count()).select_from(query)).scalar_one()
    first = session.execute(select(query).order_by(query.c.user_id).limit(1)).first()
    if first is None:
        return count, None
    composer = Composer(mailing, "", lambda _user_id: "", "")
    return count, composer.letter(first.name, first.account, Decimal(first.debt or 0))


# Queueing and its controls ------------------------------------------------------------------


def queue(session: Session, mailing_id: int, actor_id: int | None, period: dt.date,
          ip: str | None = None) -> int:
    """Fix the recipients of a draft and put it in the queue; returns how many there are.
    The delivery tasks are started by the caller (``start_delivery``) after this commits."""
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise MailingError("Рассылка не найдена.")
    if mailing.status != "draft":
        raise MailingError("Отправить можно только черновик рассылки.")
    check_template(mailing.subject, mailing.body)
    claimed = session.execute(update(Mailing).where(Mailing.id == mailing_id,
                                                    Mailing.status == "draft")
                              .values(status="queued", queued_at=utcnow()))
    if claimed.rowcount != 1:
        raise MailingError("Рассылку уже отправляют.")
    chosen = recipients_query(mailing, period).subquery()
    session.execute(insert(MailingRecipient).from_select(
        ["mailing_id", "user_id", "email", "name", "account", "debt", "status", "attempts"],
        select(literal(mailing_id), chosen.c.user_id, chosen.c.email, chosen.c.name,
               chosen.c.account, func.round(func.coalesce(chosen.c.debt, 0), 2),
               literal("pending"), literal(0))))
    total = session.execute(select(func.count(MailingRecipient.id))
                            .where(MailingRecipient.mailing_id == mailing_id)).scalar_one()
    mailing.total, mailing.sent, mailing.failed = total, 0, 0
    mailing.segment = describe_segment(session, mailing)
    if total == 0:
        mailing.status, mailing.finished_at = "done", utcnow()
    session.commit()
    audit.record(session, "mailing.queued", actor_id=actor_id, object_type="mailing",
                 object_id=str(mailing_id), ip=ip, details={"recipients": total})
    return total


def start_delivery(mailing_id: int, total: int) -> None:
    """Hand a queued mailing to Celery: in-process it is sent here and now; with a broker,
    up to MAILING_PARALLEL tasks share its chunks."""
    if total == 0:
        return
    config = current_app.config
    chunks = -(-total // int(config.get("MAILING_CHUNK", Settings.chunk)))
    eager = dispatch.runs_in_process()
    for _ in range(1 if eager else max(1, min(int(config.get("MAILING_PARALLEL", 2)),
                                              chunks))):
        dispatch.enqueue("lk_portal.deliver_mailing", mailing_id)


def pause(session: Session, mailing_id: int, actor_id: int | None, ip: str | None = None):
    _switch(session, mailing_id, ("queued", "sending"), "paused", "Приостановить можно только "
            "рассылку, которая отправляется.", "mailing.paused", actor_id, ip)


def resume(session: Session, mailing_id: int, actor_id: int | None, ip: str | None = None):
    _switch(session, mailing_id, ("paused",), "queued", "Продолжить можно только "
            "приостановленную рассылку.", "mailing.resumed", actor_id, ip)


def cancel(session: Session, mailing_id: int, actor_id: int | None, ip: str | None = None):
    """Stop for good: what was not sent yet is marked cancelled."""
    _switch(session, mailing_id, ("queued", "sending", "paused"), "canceled", "Отменить можно "
            "только рассылку, которая ещё не закончилась.", "mailing.canceled", actor_id, ip)
    session.execute(update(MailingRecipient).where(
        MailingRecipient.mailing_id == mailing_id,
        MailingRecipient.status == "pending").values(status="canceled"))
    _count(session, mailing_id)
    session.commit()


def _switch(session: Session, mailing_id: int, allowed: tuple[str, ...], to: str,
            refusal: str, action: str, actor_id: int | None, ip: str | None) -> None:
    moved = session.execute(update(Mailing).where(Mailing.id == mailing_id,
                                                  Mailing.status.in_(allowed))
                            .values(status=to)).rowcount
    if moved != 1:
        session.rollback()
        raise MailingError(refusal)
    session.commit()
    audit.record(session, action, actor_id=actor_id, object_type="mailing",
                 object_id=str(mailing_id), ip=ip)


# Delivering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    chunk: int = 200
    max_attempts: int = 5
    backoff: float = 30.0  # seconds before the first retry, doubled each time
    sender: str = "НЭСК <noreply@nesk.example>"
    domain: str = "nesk.example"
    #: A worker's task stops after this and hands the rest to a new task, so that no task
    #: outlives the broker's visibility timeout (it would then be given to a second worker).
    task_seconds: float = 300.0

    @classmethod
    def from_config(cls, config) -> "Settings":
        sender = config.get("MAIL_DEFAULT_SENDER") or cls.sender
        return cls(chunk=int(config.get("MAILING_CHUNK", cls.chunk)),
                   max_attempts=int(config.get("MAILING_MAX_ATTEMPTS", cls.max_attempts)),
                   backoff=float(config.get("MAILING_RETRY_BACKOFF", cls.backoff)),
                   task_seconds=float(config.get("MAILING_TASK_SECONDS", cls.task_seconds)),
                   sender=sender, domain=parseaddr(sender)[1].rpartition("@")[2] or cls.domain)


@dataclass
class Outcome:
    """What one ``deliver`` call did, and when to come back for retries (None: nothing
    left, or the mailing was paused or cancelled)."""

    sent: int = 0
    failed: int = 0
    retry_in: float | None = None
    connection_lost: bool = False
    out_of_time: bool = False


def deliver(session: Session, mailing_id: int, worker: str, mailer: BulkMailer,
            settings: Settings, unsubscribe_url: Callable[[int], str],
            deadline: float | None = None) -> Outcome:
    """Send the mailing's due messages chunk by chunk until none is due (or, past
    ``deadline`` on the monotonic clock, stop with ``out_of_time``), as ``worker`` (the task
    id: a redelivered task first takes back the rows it had claimed)."""
    outcome = Outcome()
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        return outcome
    composer = Composer(mailing, settings.sender, unsubscribe_url, settings.domain)
    while _active(session, mailing_id):
        rows = _claim(session, mailing_id, worker, settings.chunk)
        if not rows:
            break
        _send_chunk(session, rows, mailer, composer, settings, outcome, mailing_id)
        _count(session, mailing_id)
        session.commit()
        if outcome.connection_lost:
            break
        if deadline is not None and time.monotonic() > deadline:
            outcome.out_of_time = True
            return outcome
    outcome.retry_in = _finish_or_wait(session, mailing_id)
    return outcome


def _active(session: Session, mailing_id: int) -> bool:
    session.execute(update(Mailing).where(Mailing.id == mailing_id, Mailing.status == "queued")
                    .values(status="sending"))
    session.commit()
    status = session.execute(select(Mailing.status).where(Mailing.id == mailing_id)).scalar()
    return status == "sending"


def _claim(session: Session, mailing_id: int, worker: str, size: int) -> list:
    """This worker's rows: first those it claimed before (a redelivered task), else a new
    chunk of due ones. On PostgreSQL concurrent workers skip each other's locked rows."""
    mine = MailingRecipient.claimed_by == worker
    now = utcnow()
    due = select(MailingRecipient.id).where(
        MailingRecipient.mailing_id == mailing_id, MailingRecipient.status == "pending",
        or_(MailingRecipient.next_attempt_at.is_(None), MailingRecipient.next_attempt_at <= now)
    ).order_by(MailingRecipient.id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    held = session.execute(select(func.count(MailingRecipient.id)).where(
        MailingRecipient.mailing_id == mailing_id, MailingRecipient.status == "sending",
        mine)).scalar_one()
    if not held:
        ids = session.execute(due).scalars().all()
        if not ids:
            session.commit()
            return []
        session.execute(update(MailingRecipient).where(MailingRecipient.id.in_(ids),
                                                       MailingRecipient.status == "pending")
                        .values(status="sending", claimed_by=worker))
    session.commit()
    return session.execute(
        select(MailingRecipient.id, MailingRecipient.user_id, MailingRecipient.email,
               MailingRecipient.name, MailingRecipient.account, MailingRecipient.debt,
               MailingRecipient.attempts)
        .where(MailingRecipient.mailing_id == mailing_id, MailingRecipient.status == "sending",
               mine).order_by(MailingRecipient.id)).all()


def _send_chunk(session: Session, rows: list, mailer: BulkMailer, composer: Composer,
                settings: Settings, outcome: Outcome, mailing_id: int) -> None:
    date = format_datetime(utcnow())
    done = 0
    try:
        with session.get_bind().connect() as marks, mailer.connect() as connection:
            for row in rows:
                data = composer.message(row.id, row.email, row.user_id, row.name, row.account,
                                        Decimal(row.debt), date)
                try:
                    connection.send(composer.sender, row.email, data)
                except TemporaryFailure as exc:
                    _retry_later(session, [row], settings, str(exc))
                except PermanentFailure as exc:
                    _mark(marks, row.id, "bounced", error=str(exc)[:255])
                    outcome.failed += 1
                else:
                    _mark(marks, row.id, "sent", sent_at=utcnow())
                    outcome.sent += 1
                done += 1
                if done % 50 == 0 and not _still_sending(session, mailing_id):
                    break
    except ConnectionLost as exc:
        log.warning("mailing %s: connection lost: %s", mailing_id, exc)
        outcome.connection_lost = True
        _postpone(session, rows[done:], settings.backoff, f"соединение прервано: {exc}")
    _release(session, rows)


#: One row's fate, prepared once: it runs after every message.
MARK = text("UPDATE mailing_recipient SET status = :status, claimed_by = NULL, "
            "sent_at = :sent_at, error = :error WHERE id = :id")


def _mark(connection, recipient_id: int, status: str, sent_at: dt.datetime | None = None,
          error: str | None = None) -> None:
    """One row's fate, committed at once on its own connection: an accepted message must
    never be sent again. On PostgreSQL the commit does not wait for the disk (only a crash
    of the database server itself could then lose it, and resend a letter)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    connection.execute(MARK, {"status": status, "sent_at": sent_at, "error": error,
                              "id": recipient_id})
    connection.commit()


def _retry_later(session: Session, rows: list, settings: Settings, error: str) -> None:
    if not rows:
        return
    give_up = [r.id for r in rows if r.attempts + 1 >= settings.max_attempts]
    again = [r for r in rows if r.attempts + 1 < settings.max_attempts]
    if give_up:
        session.execute(update(MailingRecipient).where(MailingRecipient.id.in_(give_up))
                        .values(status="failed", claimed_by=None, error=error[:255],
                                attempts=MailingRecipient.attempts + 1))
    for attempts in {r.attempts for r in again}:
        pause = dt.timedelta(seconds=settings.backoff * (2 ** attempts))
        session.execute(update(MailingRecipient).where(
            MailingRecipient.id.in_([r.id for r in again if r.attempts == attempts]))
            .values(status="pending", claimed_by=None, error=error[:255],
                    attempts=MailingRecipient.attempts + 1, next_attempt_at=utcnow() + pause))
    session.commit()


def _postpone(session: Session, rows: list, seconds: float, error: str) -> None:
    """The server is away, not the addresses wrong: wait, without spending their tries."""
    session.execute(update(MailingRecipient).where(
        MailingRecipient.id.in_([r.id for r in rows])).values(
        status="pending", claimed_by=None, error=error[:255],
        next_attempt_at=utcnow() + dt.timedelta(seconds=seconds)))
    session.commit()


def _release(session: Session, rows: list) -> None:
    """Rows of the chunk left unsent (the mailing was paused) go back to the queue."""
    session.execute(update(MailingRecipient).where(
        MailingRecipient.id.in_([r.id for r in rows]), MailingRecipient.status == "sending")
        .values(status="pending", claimed_by=None))
    session.commit()


def _still_sending(session: Session, mailing_id: int) -> bool:
    return session.execute(select(Mailing.status).where(Mailing.id == mailing_id)
                           ).scalar() == "sending"


def _count(session: Session, mailing_id: int) -> None:
    """The mailing's counters from its rows (one grouped query), for the progress figure."""
    counts = dict(session.execute(
        select(MailingRecipient.status, func.count(MailingRecipient.id))
        .where(MailingRecipient.mailing_id == mailing_id)
        .group_by(MailingRecipient.status)).all())
    session.execute(update(Mailing).where(Mailing.id == mailing_id).values(
        sent=counts.get("sent", 0),
        failed=counts.get("failed", 0) + counts.get("bounced", 0) + counts.get("canceled", 0)))


def _finish_or_wait(session: Session, mailing_id: int) -> float | None:
    """Done when no row is left to send; else the seconds until the next retry is due."""
    if not _still_sending(session, mailing_id):
        return None
    left = session.execute(select(func.count(MailingRecipient.id), func.min(
        MailingRecipient.next_attempt_at)).where(
        MailingRecipient.mailing_id == mailing_id,
        MailingRecipient.status.in_(("pending", "sending")))).one()
    if left[0] == 0:
        session.execute(update(Mailing).where(Mailing.id == mailing_id,
                                              Mailing.status == "sending")
                        .values(status="done", finished_at=utcnow()))
        _count(session, mailing_id)
        session.commit()
        return None
    due = left[1]
    if due is None:
        return 0.0
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (due - utcnow()).total_seconds())


def wait_and_deliver(deliver_once: Callable[[], Outcome], sleep=time.sleep,
                     limit: float = 600.0) -> Outcome:
    """In-process delivery (no worker): sleep through the retry pauses, at most ``limit``."""
    total = Outcome()
    waited = 0.0
    while True:
        step = deliver_once()
        total.sent += step.sent
        total.failed += step.failed
        if step.retry_in is None or waited + step.retry_in > limit:
            total.retry_in = step.retry_in
            return total
        sleep(step.retry_in)
        waited += step.retry_in
