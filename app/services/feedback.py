"""Messages from customers to their branch (обращения) and the branch's answers.

Written for any author: the caller says which branch the message goes to and which accounts
the author may refer to (an organization's accounts, a resident's bound ones), so the same
rules serve the business cabinet, the resident's cabinet and the public form (no sign-in: a
name and an e-mail instead of a user, rate-limited, with a honeypot field for robots).

Staff handle a message with plain functions over a session (assign, reply, close), each given
the staff member's branch scope: a message of another branch is "not found". The reply is
committed first and then e-mailed to the author; a failed e-mail never undoes it.
"""
from __future__ import annotations

import datetime as dt
import logging

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import false, select
from sqlalchemy.orm import Session, joinedload

from app.models import Branch, Feedback, FeedbackStatus, PersonalAccount, PortalUser
from app.services import accounts, audit, notify
from app.services.ids import parse_id
from app.services.phones import normalize_phone
from app.services.throttle import guard

log = logging.getLogger(__name__)

TOPIC_MAX = 160  # the column's length
MESSAGE_MAX = 4000
HISTORY_SHOWN = 50
#: Topics offered on the form; any other text is accepted too.
COMMON_TOPICS = ("Начисления и счета", "Показания приборов учёта", "Оплата и сверка расчётов",
                 "Договор энергоснабжения", "Приборы учёта и поверка", "Другое")

TOPIC_EMPTY = "Укажите тему обращения."
TOPIC_LONG = f"Тема обращения — не длиннее {TOPIC_MAX} символов."
MESSAGE_EMPTY = "Напишите текст обращения."
MESSAGE_LONG = f"Текст обращения — не длиннее {MESSAGE_MAX} символов."
ACCOUNT_UNKNOWN = "Выберите лицевой счёт из списка."

NAME_MAX = 160  # the columns' lengths
EMAIL_MAX = 320
NAME_EMPTY = "Укажите, как к вам обращаться."
NAME_LONG = f"Имя — не длиннее {NAME_MAX} символов."
EMAIL_BAD = "Введите адрес электронной почты, например ivanov@mail.ru: на него придёт ответ."
PHONE_BAD = "Введите номер телефона, например +7 918 123-45-67, или оставьте поле пустым."
BRANCH_UNKNOWN = "Выберите филиал из списка."
CONSENT_MISSING = "Без согласия на обработку персональных данных мы не сможем ответить."
REPLY_EMPTY = "Напишите текст ответа."
REPLY_LONG = f"Ответ — не длиннее {MESSAGE_MAX} символов."
ALREADY_ANSWERED = "На это обращение уже ответили."
ALREADY_CLOSED = "Обращение закрыто: изменить его нельзя."


class FeedbackError(ValueError):
    """A message that cannot be sent as given; ``errors`` maps a form field to its reason,
    safe to show to the user."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(errors.values()))
        self.errors = errors


def _clean(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").strip()


def _text_errors(topic: str, message: str) -> dict[str, str]:
    """The reasons to refuse a (cleaned) topic and text, by form field."""
    errors: dict[str, str] = {}
    if not topic:
        errors["topic"] = TOPIC_EMPTY
    elif len(topic) > TOPIC_MAX:
        errors["topic"] = TOPIC_LONG
    if not message:
        errors["message"] = MESSAGE_EMPTY
    elif len(message) > MESSAGE_MAX:
        errors["message"] = MESSAGE_LONG
    return errors


def _account_id(raw, allowed_accounts, session: Session) -> int | None:
    """The chosen account as an id, or None for "no account"; anything not among
    ``allowed_accounts`` (a subquery of ids) is refused like a missing one."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    account_id = parse_id(text)
    if account_id is None or allowed_accounts is None or session.execute(
            select(PersonalAccount.id).where(PersonalAccount.id == account_id,
                                             PersonalAccount.id.in_(allowed_accounts))
    ).first() is None:
        raise ValueError(text)
    return account_id


def create(session: Session, *, user_id: int | None, branch_id: int, topic: str | None,
           message: str | None, account=None, allowed_accounts=None,
           ip: str | None = None) -> Feedback:
    """Check and save a message to ``branch_id``. ``account`` (an id, or the form's text;
    empty for none) must be one of ``allowed_accounts``, a select of the account ids the
    author may refer to. Raises FeedbackError with every reason at once; saves nothing then."""
    topic, message = _clean(topic), _clean(message)
    errors = _text_errors(topic, message)
    account_id = None
    try:
        account_id = _account_id(account, allowed_accounts, session)
    except ValueError:
        errors["account"] = ACCOUNT_UNKNOWN
    if errors:
        raise FeedbackError(errors)
    row = Feedback(user_id=user_id, branch_id=branch_id, account_id=account_id, topic=topic,
                   message=message, status="new")
    session.add(row)
    session.commit()
    audit.record(session, "feedback.created", actor_id=user_id, object_type="feedback",
                 object_id=row.id, ip=ip, details={"branch": branch_id, "account": account_id})
    return row


def history(session: Session, author_ids, limit: int = HISTORY_SHOWN) -> list[Feedback]:
    """The messages written by ``author_ids`` (a select of user ids), newest first."""
    return list(session.execute(
        select(Feedback).where(Feedback.user_id.in_(author_ids))
        .options(joinedload(Feedback.account), joinedload(Feedback.user))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit)
    ).scalars())


def organization_authors(organization_id: int | None):
    """The users of an organization, as a select of ids: whoever of them wrote, the
    organization sees the conversation."""
    if organization_id is None:
        return select(PortalUser.id).where(false())
    return select(PortalUser.id).where(PortalUser.organization_id == organization_id)


def status_label(status: str | None) -> str:
    return FeedbackStatus.label(status)


# The public form and the resident's cabinet --------------------------------------------------


def branches(session: Session) -> list[Branch]:
    """Every branch with its city, address and phone, in one query: the public form's choice
    of addressee and the contacts page."""
    return list(session.execute(select(Branch).order_by(Branch.city, Branch.name)).scalars())


def _branch_id(session: Session, raw) -> int | None:
    branch_id = parse_id(raw)
    if branch_id is None:
        return None
    return session.execute(select(Branch.id).where(Branch.id == branch_id)).scalar_one_or_none()


def _email(raw: str | None) -> str | None:
    text = (raw or "").strip()
    if not text or len(text) > EMAIL_MAX:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def create_public(session: Session, *, name: str | None, email: str | None,
                  phone: str | None, branch, topic: str | None, message: str | None,
                  consent: bool, trap: str | None = None,
                  ip: str | None = None) -> Feedback | None:
    """Check and save a message from the public form: the visitor's name, e-mail (the reply
    goes there), optional phone, the branch chosen from ``branches``. A filled ``trap`` (the
    honeypot, hidden from people) means a robot: nothing is saved and None is returned, so
    the caller answers as if sent. Raises Throttled after too many messages from one e-mail
    or IP, FeedbackError with every reason at once; saves nothing then."""
    attempts = guard("feedback")
    subject = (email or "").strip().lower()
    attempts.check(subject, ip)
    if (trap or "").strip():
        attempts.failed(subject, ip)  # a robot's tries count against its IP too
        log.info("feedback honeypot filled from %s; nothing saved", ip)
        return None
    name, topic, message = _clean(name), _clean(topic), _clean(message)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = NAME_EMPTY
    elif len(name) > NAME_MAX:
        errors["name"] = NAME_LONG
    address = _email(email)
    if address is None:
        errors["email"] = EMAIL_BAD
    phone_number = None
    if (phone or "").strip():
        phone_number = normalize_phone(phone)
        if phone_number is None:
            errors["phone"] = PHONE_BAD
    branch_id = _branch_id(session, branch)
    if branch_id is None:
        errors["branch"] = BRANCH_UNKNOWN
    errors.update(_text_errors(topic, message))
    if not consent:
        errors["consent"] = CONSENT_MISSING
    if errors:
        raise FeedbackError(errors)
    row = Feedback(user_id=None, author_name=name, author_email=address,
                   author_phone=phone_number, branch_id=branch_id, topic=topic,
                   message=message, status="new")
    session.add(row)
    session.commit()
    attempts.failed(subject, ip)  # every message sent counts towards the limit
    audit.record(session, "feedback.created", object_type="feedback", object_id=row.id, ip=ip,
                 details={"branch": branch_id, "public": True})
    return row


def author_accounts(session: Session, user_id: int) -> list[PersonalAccount]:
    """The accounts a resident may write about: their bound ones, with addresses."""
    return list(session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id.in_(accounts.bound_account_ids(session, user_id)))
        .options(joinedload(PersonalAccount.premises))
        .order_by(PersonalAccount.number)
    ).scalars())


def create_for_resident(session: Session, *, user_id: int, account, topic: str | None,
                        message: str | None, ip: str | None = None) -> Feedback:
    """A signed-in resident's message about one of their bound accounts (required), to that
    account's branch. Someone else's account is refused like an unknown one. Rate-limited
    like the public form."""
    attempts = guard("feedback")
    subject = f"user:{user_id}"
    attempts.check(subject, ip)
    topic, message = _clean(topic), _clean(message)
    errors = _text_errors(topic, message)
    account_id = None
    try:
        account_id = _account_id(account, accounts.bound_account_ids(session, user_id),
                                 session)
    except ValueError:
        pass
    if account_id is None:
        errors["account"] = ACCOUNT_UNKNOWN
    if errors:
        raise FeedbackError(errors)
    branch_id = session.execute(select(PersonalAccount.branch_id)
                                .where(PersonalAccount.id == account_id)).scalar_one()
    row = Feedback(user_id=user_id, branch_id=branch_id, account_id=account_id, topic=topic,
                   message=message, status="new")
    session.add(row)
    session.commit()
    attempts.failed(subject, ip)  # every message sent counts towards the limit
    audit.record(session, "feedback.created", actor_id=user_id, object_type="feedback",
                 object_id=row.id, ip=ip, details={"branch": branch_id, "account": account_id})
    return row


# Staff: assign, reply, close -----------------------------------------------------------------


class FeedbackNotFound(LookupError):
    """No such message within the staff member's branch (the caller answers 404)."""


class HandlingRefused(Exception):
    """A step that does not apply to the message as it is; the text is safe to show."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def for_staff(session: Session, feedback_id: int, scope: int | None) -> Feedback:
    """The message if the staff member's branch scope (None: every branch) covers it."""
    query = (select(Feedback).where(Feedback.id == feedback_id)
             .options(joinedload(Feedback.user), joinedload(Feedback.branch),
                      joinedload(Feedback.account)))
    if scope is not None:
        query = query.where(Feedback.branch_id == scope)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise FeedbackNotFound(feedback_id)
    return row


def _open(session: Session, feedback_id: int, scope: int | None) -> Feedback:
    row = for_staff(session, feedback_id, scope)
    if row.status == "closed":
        raise HandlingRefused(ALREADY_CLOSED)
    return row


def assign(session: Session, feedback_id: int, *, staff_id: int, scope: int | None,
           ip: str | None = None) -> Feedback:
    """Take the message into work: the staff member becomes its assignee."""
    row = _open(session, feedback_id, scope)
    row.assigned_to_id, row.assigned_at = staff_id, _now()
    session.commit()
    audit.record(session, "feedback.assigned", actor_id=staff_id, object_type="feedback",
                 object_id=row.id, ip=ip, details={"branch": row.branch_id})
    return row


def reply(session: Session, feedback_id: int, text: str | None, *, staff_id: int,
          scope: int | None, ip: str | None = None, cabinet_url: str | None = None) -> bool:
    """Answer the message (once), then tell the author by e-mail (by SMS when a phone-only
    resident wrote). The answer is saved first: a failed notice leaves it in place, with
    ``reply_sent_at`` empty. Returns whether the notice went out. ``cabinet_url`` is where a
    signed-in author reads the answer too."""
    row = _open(session, feedback_id, scope)
    if row.status != "new" or row.reply:
        raise HandlingRefused(ALREADY_ANSWERED)
    text = _clean(text)
    if not text:
        raise FeedbackError({"reply": REPLY_EMPTY})
    if len(text) > MESSAGE_MAX:
        raise FeedbackError({"reply": REPLY_LONG})
    now = _now()
    row.reply, row.status = text, "answered"
    row.answered_at, row.answered_by_id = now, staff_id
    if row.assigned_to_id is None:
        row.assigned_to_id, row.assigned_at = staff_id, now
    session.commit()
    sent = _notify_author(row, cabinet_url)
    if sent:
        row.reply_sent_at = _now()
        session.commit()
    audit.record(session, "feedback.replied", actor_id=staff_id, object_type="feedback",
                 object_id=row.id, ip=ip, details={"branch": row.branch_id, "notified": sent})
    return sent


def close(session: Session, feedback_id: int, *, staff_id: int, scope: int | None,
          ip: str | None = None) -> Feedback:
    """Close the conversation: nothing more is expected from either side."""
    row = _open(session, feedback_id, scope)
    row.status, row.closed_at = "closed", _now()
    session.commit()
    audit.record(session, "feedback.closed", actor_id=staff_id, object_type="feedback",
                 object_id=row.id, ip=ip, details={"branch": row.branch_id})
    return row


def reply_contact(row: Feedback) -> tuple[str, str] | None:
    """Where the answer's notice goes, as (kind, address): the public author's e-mail, a
    user's real e-mail, else a phone-only user's phone; None when there is nowhere."""
    if row.user is None:
        return ("email", row.author_email) if row.author_email else None
    if row.user.deliverable_email:
        return "email", row.user.deliverable_email
    return ("sms", row.user.phone) if row.user.phone else None


def reply_letter(row: Feedback, cabinet_url: str | None = None) -> tuple[str, str]:
    """The e-mail announcing the answer: (subject, text)."""
    config = current_app.config
    name = row.author.strip()
    lines = [f"Здравствуйте, {name}!" if name else "Здравствуйте!", "",
             f"Филиал «{row.branch.name}» ответил на ваше обращение № {row.id} "
             f"«{row.topic}».", "",
             row.reply or "", ""]
    if row.user is not None and cabinet_url:
        lines += [f"Ответ сохранён в личном кабинете: {cabinet_url}", ""]
    lines += [f"Если остались вопросы, звоните в контактный центр {config['SUPPLIER_PHONE']} "
              "(круглосуточно, звонок бесплатный) или пишите на "
              f"{config['SUPPLIER_EMAIL']}.", "", config["SUPPLIER_NAME"]]
    return f"Ответ на обращение № {row.id}", "\n".join(lines)


def _notify_author(row: Feedback, cabinet_url: str | None) -> bool:
    contact = reply_contact(row)
    if contact is None:
        return False
    kind, address = contact
    if kind == "sms":
        return notify.send_notice("sms", address, f"Ответ на обращение № {row.id}",
                                  f"НЭСК: на обращение № {row.id} дан ответ, он в личном "
                                  "кабинете.")
    subject, text = reply_letter(row, cabinet_url)
    return notify.send_notice("email", address, subject, text)


def all_in_scope(rows, scope: int | None) -> bool:
    """Whether every one of the (loaded) messages is within the branch scope."""
    return all(row is not None and (scope is None or row.branch_id == scope) for row in rows)
