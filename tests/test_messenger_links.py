"""A resident's cabinet linked to a chat with the portal's bot (app.services.messenger_links):
one-time links stored as hashes, redeemed once, unlinking from the profile, the profile's
block, and notices to the chat by topic. The bot here is a recording stand-in offered as
the messenger transport; plugins/telegram_bot tests the real one against a loopback Bot API."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import messenger_links, notice_events, notices
from app.services.sessions import token_hash


class RecordingBot:
    """A messenger transport that keeps what it was asked to send."""

    name = "telegram"
    channel = "messenger"
    title = "Telegram"

    def __init__(self):
        self.sent = []

    def send(self, notice):
        self.sent.append(notice)

    def link_url(self, token: str) -> str:
        return f"https://t.me/test_bot?start={token}"


@pytest.fixture
def bot(app, monkeypatch):
    stand_in = RecordingBot()
    monkeypatch.setitem(app.extensions, "messenger_transports", {"telegram": stand_in})
    return stand_in


def token_of(issued: messenger_links.IssuedLink) -> str:
    return issued.url.split("start=")[1]


def link_count(session) -> int:
    return session.scalar(select(func.count(m.MessengerLink.id)))


def test_one_time_link_is_stored_as_a_hash_and_spent_by_its_first_use(session, owner, bot):
    user = owner[0]
    first = messenger_links.issue_link(session, user, "telegram")
    issued = messenger_links.issue_link(session, user, "telegram")  # voids the first
    token = token_of(issued)
    [row] = session.scalars(select(m.MessengerLinkToken)).all()
    assert row.token_hash == token_hash(token) and token not in row.token_hash
    with pytest.raises(messenger_links.LinkError, match="недействительна"):
        messenger_links.redeem(session, "telegram", "101", token_of(first))
    assert messenger_links.redeem(session, "telegram", "101", token).id == user.id
    with pytest.raises(messenger_links.LinkError, match="уже использована"):
        messenger_links.redeem(session, "telegram", "202", token)
    link = messenger_links.user_for_chat(session, "telegram", "101")
    assert (link.user_id, link.chat_id) == (user.id, "101")
    assert messenger_links.user_for_chat(session, "telegram", "202") is None


def test_expired_link_and_another_cabinets_chat_are_refused(session, owner, bot, make_user_fn):
    user = owner[0]
    token = token_of(messenger_links.issue_link(session, user, "telegram"))
    session.execute(m.MessengerLinkToken.__table__.update().values(
        expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    with pytest.raises(messenger_links.LinkError, match="устарела"):
        messenger_links.redeem(session, "telegram", "101", token)
    other = make_user_fn("other", "Resident", kind="resident")
    messenger_links.redeem(session, "telegram", "101",
                           token_of(messenger_links.issue_link(session, other, "telegram")))
    with pytest.raises(messenger_links.LinkError, match="другому личному кабинету"):
        messenger_links.redeem(session, "telegram", "101",
                               token_of(messenger_links.issue_link(session, user, "telegram")))
    assert messenger_links.chat_link(session, "telegram", "101").user_id == other.id


def test_a_new_chat_replaces_the_first_and_staff_get_no_link(session, owner, bot, make_user_fn):
    user = owner[0]
    for chat in ("101", "102"):
        messenger_links.redeem(session, "telegram", chat,
                               token_of(messenger_links.issue_link(session, user, "telegram")))
    assert [link.chat_id for link in session.scalars(select(m.MessengerLink))] == ["102"]
    staff = make_user_fn("clerk", "Staff")
    with pytest.raises(messenger_links.LinkError, match="кабинетом жителя"):
        messenger_links.issue_link(session, staff, "telegram")


def test_no_bot_no_block_and_no_route(client, owner):
    page = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Telegram-бот" not in page
    assert client.post("/cabinet/profile/messenger/telegram/link").status_code == 404


def test_profile_links_shows_qr_and_unlinks(client, session, owner, bot):
    user = owner[0]
    page = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Telegram-бот" in page and "Подключить" in page
    answer = client.post("/cabinet/profile/messenger/telegram/link")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "https://t.me/test_bot?start=" in body and "<svg" in body
    assert "вводить не нужно" in body
    token = body.split("?start=")[1].split('"')[0]
    assert session.scalar(select(m.MessengerLinkToken.token_hash)) == token_hash(token)
    messenger_links.redeem(session, "telegram", "101", token)
    page = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Подключён" in page and "Отключить" in page
    assert client.post("/cabinet/profile/messenger/unknown/link").status_code == 404

    assert client.post("/cabinet/profile/messenger/telegram/unlink").status_code == 302
    assert link_count(session) == 0
    assert [(n.to, n.subject) for n in bot.sent] == [("101", "Бот отключён")]
    actions = session.scalars(select(m.AuditEvent.action).where(
        m.AuditEvent.actor_id == user.id, m.AuditEvent.action.like("messenger.%"))).all()
    assert actions == ["messenger.link_issued", "messenger.linked", "messenger.unlinked"]


def test_another_users_chat_is_out_of_reach(client, session, owner, bot):
    """The signed-in owner's «Отключить» ends their own link only: the neighbour's stays."""
    neighbour = session.scalars(select(m.PortalUser).filter_by(username="neighbour")).one()
    messenger_links.redeem(session, "telegram", "202",
                           token_of(messenger_links.issue_link(session, neighbour, "telegram")))
    page = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Подключить" in page and "Подключён" not in page
    assert client.post("/cabinet/profile/messenger/telegram/unlink").status_code == 302
    assert messenger_links.chat_link(session, "telegram", "202").user_id == neighbour.id
    assert bot.sent == []


def test_notices_form_chooses_topics_for_the_chat(client, session, owner, bot):
    user = owner[0]
    form = client.get("/cabinet/profile/notifications").get_data(as_text=True)
    assert 'name="chat_bills"' not in form  # not linked: no column
    messenger_links.redeem(session, "telegram", "101",
                           token_of(messenger_links.issue_link(session, user, "telegram")))
    form = client.get("/cabinet/profile/notifications").get_data(as_text=True)
    assert "В чат Telegram-бота" in form and 'name="chat_bills"' in form
    client.post("/cabinet/profile/notifications",
                data={"notify_bills_email": "y", "chat_readings": "y"})
    link = messenger_links.chat_link(session, "telegram", "101")
    assert (link.notify_bills, link.notify_readings, link.notify_payments) == \
        (False, True, False)
    assert session.get(m.PortalUser, user.id).notify_bills_email is True


def test_notice_goes_to_the_chat_by_topic(session, owner, bot):
    user, krd, _ = owner
    messenger_links.redeem(session, "telegram", "101",
                           token_of(messenger_links.issue_link(session, user, "telegram")))
    user.notify_payments_email = user.notify_payments_sms = False  # the chat alone
    session.commit()
    payment = krd.ids["Payment"]
    assert notice_events.payment_received(session, [payment]) == 1
    [notice] = bot.sent
    assert notice.to == "101" and notice.subject.startswith("Платёж")
    assert notices.FOOTER_RULE not in notice.text and "500,00" in notice.text
    assert session.scalar(select(m.NoticeLog.channels)) == "telegram"

    session.execute(m.NoticeLog.__table__.delete())
    link = messenger_links.chat_link(session, "telegram", "101")
    link.notify_payments = False
    session.commit()
    bot.sent.clear()
    assert notice_events.payment_received(session, [payment]) == 0  # nobody wants it now
    assert bot.sent == []


def test_conversation_state_expires(session, owner, bot):
    user = owner[0]
    messenger_links.redeem(session, "telegram", "101",
                           token_of(messenger_links.issue_link(session, user, "telegram")))
    link = messenger_links.chat_link(session, "telegram", "101")
    messenger_links.set_state(session, link, {"step": "value", "meter": 7})
    assert messenger_links.state(link) == {"step": "value", "meter": 7}
    link.state_expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert messenger_links.state(link) is None
