"""Messages from customers to their branch (обращения) and the branch's answers.

Written for any author: the caller says which branch the message goes to and which accounts
the author may refer to (an organization's accounts, a resident's bound ones), so the same
rules serve the business cabinet now and the resident's cabinet later.
"""
from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.orm import Session, joinedload

from app.models import Feedback, FeedbackStatus, PersonalAccount, PortalUser
from app.services import audit

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


class FeedbackError(ValueError):
    """A message that cannot be sent as given; ``errors`` maps a form field to its reason,
    safe to show to the user."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(errors.values()))
        self.errors = errors


def _clean(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").strip()


def _account_id(raw, allowed_accounts, session: Session) -> int | None:
    """The chosen account as an id, or None for "no account"; anything not among
    ``allowed_accounts`` (a subquery of ids) is refused like a missing one."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(text)
    account_id = int(text)
    if allowed_accounts is None or session.execute(
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
    errors: dict[str, str] = {}
    if not topic:
        errors["topic"] = TOPIC_EMPTY
    elif len(topic) > TOPIC_MAX:
        errors["topic"] = TOPIC_LONG
    if not message:
        errors["message"] = MESSAGE_EMPTY
    elif len(message) > MESSAGE_MAX:
        errors["message"] = MESSAGE_LONG
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
