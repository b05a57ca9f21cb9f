"""The Telegram bot end to end: updates posted to the portal's webhook with the test client,
answers read back from a loopback Bot API (lk_telegram_bot.testing) that python-telegram-bot
talks to over real HTTP."""
from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask import Flask, current_app
from sqlalchemy import func, select

import lk_telegram_bot
from app import models as m
from app.extensions import db
from app.plugins import DeliveryError
from app.services import ledger, messenger_links, notice_events
from app.services.binding import bind_accounts
from app.services.periods import local_today
from app.services.sessions import token_hash
from app.services.throttle import RULES
from lk_telegram_bot import SECRET_HEADER, dialog, webhook_path
from lk_telegram_bot.client import TelegramClient
from lk_telegram_bot.testing import SECRET, TOKEN, USERNAME, callback_update, message_update
from tests.factories import PASSWORD, build_branch_world, make_user

CHAT, OTHER_CHAT = 5551001, 5551002
PORTAL_URL = "https://lk.example.test"


def post(client, update, *, secret=SECRET, path=None):
    bot = lk_telegram_bot.settings()
    return client.post(f"/telegram/webhook/{path or bot.path}", json=update,
                       headers={SECRET_HEADER: secret})


@pytest.fixture
def client(portal):
    return portal.test_client()


@pytest.fixture
def world(portal):
    """Krasnodar's household account bound to ``owner``, Novorossiysk's to ``neighbour``."""
    session = db.session
    krd = build_branch_world(session, "krd", "Краснодарэнергосбыт", "Краснодар", 1)
    nvr = build_branch_world(session, "nvr", "Новороссийскэнергосбыт", "Новороссийск", 2)
    owner = make_user(session, portal.appbuilder.sm, username="owner", role="Resident",
                      kind="resident")
    neighbour = make_user(session, portal.appbuilder.sm, username="neighbour", role="Resident",
                          kind="resident")
    bind_accounts(session, owner.id, [("230000000001", "SN-krd-1")], None)
    bind_accounts(session, neighbour.id, [("230000000002", "SN-nvr-2")], None)
    return SimpleNamespace(owner=owner, neighbour=neighbour, krd=krd, nvr=nvr,
                           account=krd.ids["PersonalAccount"], meter=krd.ids["Meter"],
                           other_account=nvr.ids["PersonalAccount"], other_meter=nvr.ids["Meter"])


def link_token(user) -> str:
    issued = messenger_links.issue_link(db.session, user, "telegram")
    prefix = f"https://t.me/{USERNAME}?start="
    assert issued.url.startswith(prefix)
    return issued.url[len(prefix):]


@pytest.fixture
def linked(world, client, fake):
    post(client, message_update(CHAT, f"/start {link_token(world.owner)}"))
    assert messenger_links.user_for_chat(db.session, "telegram", str(CHAT)).user_id == \
        world.owner.id
    fake.reset()
    return world


def press(client, data, chat=CHAT):
    return post(client, callback_update(chat, data))


def say(client, text, chat=CHAT):
    return post(client, message_update(chat, text))


def readings_of(meter_id):
    return db.session.scalars(select(m.Reading).where(
        m.Reading.meter_id == meter_id,
        m.Reading.period == local_today(current_app.config).replace(day=1))).all()


# The plugin ----------------------------------------------------------------------------------


def test_discovered_through_its_entry_point(portal):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="lk_portal")}
    assert eps["telegram_bot"].value == "lk_telegram_bot"
    assert eps["telegram_bot"].dist.name == "lk-telegram-bot"
    pm = portal.extensions["plugins"]
    assert pm.get_plugin("telegram_bot") is lk_telegram_bot
    result = portal.test_cli_runner().invoke(args=["plugins", "list"])
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    assert lines["telegram_bot"] == ("configure, register_commands, "
                                     "register_notification_transports, register_views")
    assert list(portal.extensions["messenger_transports"]) == ["telegram"]


def configured(**config) -> Flask:
    flask_app = Flask(__name__)
    flask_app.config.update(config)
    lk_telegram_bot.configure(flask_app)
    return flask_app


def test_off_without_a_token(monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    flask_app = configured(TELEGRAM_WEBHOOK_SECRET=SECRET, TELEGRAM_DEV_CHAT="0")
    assert lk_telegram_bot.settings(flask_app) is None
    with flask_app.app_context():
        assert lk_telegram_bot.register_notification_transports() == []


def test_bad_settings_stop_the_start():
    with pytest.raises(RuntimeError, match="TELEGRAM_WEBHOOK_SECRET"):
        configured(TELEGRAM_BOT_TOKEN=TOKEN)
    with pytest.raises(RuntimeError, match="TELEGRAM_WEBHOOK_SECRET"):
        configured(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET="short")
    with pytest.raises(RuntimeError, match="https"):
        configured(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=SECRET, PRODUCTION=True,
                   TELEGRAM_API_URL="http://api.telegram.org")
    bot = lk_telegram_bot.settings(configured(TELEGRAM_BOT_TOKEN=TOKEN,
                                              TELEGRAM_WEBHOOK_SECRET=SECRET))
    assert TOKEN not in repr(bot) and SECRET not in repr(bot)
    assert SECRET not in bot.path and bot.path == webhook_path(SECRET)


def test_set_webhook_command(portal, fake):
    runner = portal.test_cli_runner()
    result = runner.invoke(args=["telegram", "set-webhook"])
    assert result.exit_code == 0, result.output
    [call] = fake.of("setWebhook")
    bot = lk_telegram_bot.settings()
    assert call["params"]["url"] == f"{PORTAL_URL}/telegram/webhook/{bot.path}"
    assert call["params"]["secret_token"] == SECRET
    assert call["params"]["allowed_updates"] == ["message", "callback_query"]
    assert bot.path not in result.output and SECRET not in result.output
    portal.config["PORTAL_URL"] = "http://127.0.0.1:5000"
    refused = runner.invoke(args=["telegram", "set-webhook"])
    assert refused.exit_code != 0 and "https://" in refused.output
    assert len(fake.of("setWebhook")) == 1


def test_bots_username_asked_once_with_get_me(fake):
    fake.reset()
    client = TelegramClient(TOKEN, fake.url, timeout=5)
    assert client.username() == client.username() == USERNAME
    assert len(fake.of("getMe")) == 1
    assert TelegramClient(TOKEN, fake.url, username="@other_bot").username() == "other_bot"
    assert len(fake.of("getMe")) == 1
    with pytest.raises(DeliveryError, match="Telegram сейчас не отвечает"):
        TelegramClient("1:wrong-token", fake.url, timeout=5).username()



def test_calls_work_from_a_thread_whose_loop_is_running(fake):
    """Under an async server or a harness whose loop runs in the calling thread (Playwright's
    sync API leaves one), the Bot API calls still go out, on a loop of their own."""
    fake.reset()
    client = TelegramClient(TOKEN, fake.url, timeout=5)

    async def inside_a_running_loop():
        return client.username()

    # A thread of the test's own, where nothing else runs a loop (this one may: a browser
    # test before it in the same worker leaves Playwright's).
    with ThreadPoolExecutor(max_workers=1) as apart:
        assert apart.submit(asyncio.run, inside_a_running_loop()).result() == USERNAME
    assert len(fake.of("getMe")) == 1

# The webhook's checks ------------------------------------------------------------------------


def test_wrong_secret_header_or_path_does_nothing(world, client, fake):
    token = link_token(world.owner)
    fake.reset()
    assert post(client, message_update(CHAT, f"/start {token}"), secret="wrong").status_code \
        == 403
    assert post(client, message_update(CHAT, f"/start {token}"), secret="").status_code == 403
    assert post(client, message_update(CHAT, f"/start {token}"),
                path=webhook_path("another-secret-0123456789")).status_code == 404
    assert fake.calls == []
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)) is None
    assert db.session.scalar(select(m.MessengerLinkToken.used_at)) is None
    assert post(client, message_update(CHAT, f"/start {token}")).status_code == 200
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)) is not None


# Linking -------------------------------------------------------------------------------------


def test_link_by_one_time_token(world, client, fake):
    token = link_token(world.owner)
    stored = db.session.scalars(select(m.MessengerLinkToken)).one()
    assert stored.token_hash == token_hash(token) and token not in stored.token_hash
    expires = stored.expires_at.replace(tzinfo=stored.expires_at.tzinfo or dt.timezone.utc)
    assert dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.timezone.utc) \
        <= dt.timedelta(minutes=15)

    assert post(client, message_update(CHAT, f"/start {token}")).status_code == 200
    [greeting] = fake.of("sendMessage")
    assert str(greeting["params"]["chat_id"]) == str(CHAT)
    assert greeting["params"]["text"].startswith("Готово, Тест: бот подключён")
    assert [b["callback_data"] for b in fake.buttons(greeting)] == ["bal", "rd", "pay", "off"]
    link = messenger_links.user_for_chat(db.session, "telegram", str(CHAT))
    assert link.user_id == world.owner.id

    fake.reset()
    say(client, f"/start {token}", chat=OTHER_CHAT)  # the same link again: spent
    assert fake.texts() == [messenger_links.USED]
    assert messenger_links.chat_link(db.session, "telegram", str(OTHER_CHAT)) is None


def test_expired_and_wrong_tokens_link_nothing(world, client, fake):
    token = link_token(world.owner)
    db.session.execute(m.MessengerLinkToken.__table__.update().values(
        expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    db.session.commit()
    fake.reset()
    say(client, f"/start {token}")
    say(client, "/start " + "x" * 32)
    assert fake.texts() == [messenger_links.EXPIRED, messenger_links.WRONG]
    assert db.session.scalar(select(func.count(m.MessengerLink.id))) == 0


def test_a_chat_serving_one_cabinet_refuses_anothers_link(linked, client, fake):
    say(client, f"/start {link_token(linked.neighbour)}")
    assert fake.texts()[-1] == messenger_links.TAKEN
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)).user_id == \
        linked.owner.id


def test_group_chats_are_refused(world, client, fake):
    post(client, message_update(-100200, f"/start {link_token(world.owner)}", chat_type="group"))
    assert fake.texts() == [dialog.PRIVATE_ONLY]
    assert db.session.scalar(select(func.count(m.MessengerLink.id))) == 0


def test_an_unlinked_chat_is_told_how_to_link(world, client, fake):
    say(client, "230000000001")
    press(client, "bal")
    assert fake.texts() == [dialog.HOW_TO_LINK, dialog.HOW_TO_LINK]
    assert "пароль" in dialog.HOW_TO_LINK.lower()
    assert len(fake.of("answerCallbackQuery")) == 1
    assert not fake.of("sendDocument")


# Balance, bill, payment ----------------------------------------------------------------------


def test_balance_and_last_bill_of_own_accounts(linked, client, fake):
    assert press(client, "bal").status_code == 200
    assert len(fake.of("answerCallbackQuery")) == 1
    card, menu = fake.of("sendMessage")
    text = card["params"]["text"]
    balance = ledger.balances(db.session, [linked.account])[linked.account].balance
    assert balance == Decimal("235.00")  # charged 735, paid 500: the ledger's own figure
    address = db.session.get(m.PersonalAccount, linked.account).premises.address
    assert text.splitlines() == [
        "Лицевой счёт 230000000001", address,
        "К оплате: 235,00\u00a0₽",
        "Последний счёт: октябрь 2026 г., 735,00\u00a0₽, оплатить до 10.11.2026"]
    buttons = fake.buttons(card)
    assert buttons[0]["callback_data"] == f"pdf:{linked.account}"
    assert buttons[1]["url"] == f"{PORTAL_URL}/cabinet/pay/{linked.account}"
    assert "230000000002" not in str(fake.calls)
    assert menu["params"]["text"] == dialog.MENU_TEXT


def test_bill_pdf_sent_as_a_document(linked, client, fake):
    press(client, f"pdf:{linked.account}")
    [sent] = fake.of("sendDocument")
    document = sent["files"]["document"]
    assert document["filename"] == "Счёт_230000000001_2026-10.pdf"
    assert document["content"].startswith(b"%PDF")
    assert "октябрь 2026" in sent["params"]["caption"]
    event = db.session.scalars(select(m.AuditEvent).where(
        m.AuditEvent.action == "export.pdf")).one()
    assert event.actor_id == linked.owner.id and event.object_id == str(linked.account)


def test_pay_links_to_the_cabinets_pay_page(linked, client, fake):
    press(client, "pay")
    [sent] = fake.of("sendMessage")
    assert fake.buttons(sent)[0] == {
        "text": "Л/с 230000000001 · 235,00\u00a0₽",
        "url": f"{PORTAL_URL}/cabinet/pay/{linked.account}"}


def test_another_users_account_is_never_reachable(linked, client, fake):
    say(client, "2300 0000 0002")  # the neighbour's number
    press(client, f"pdf:{linked.other_account}")
    press(client, f"rm:{linked.other_meter}")
    say(client, "230000000001")  # one's own: shown
    texts = fake.texts()
    assert texts[:3] == [dialog.NOT_FOUND, dialog.NOT_FOUND, dialog.METER_NOT_FOUND]
    assert texts[3].startswith("Лицевой счёт 230000000001")
    assert not fake.of("sendDocument")
    assert "Новороссийск" not in str(fake.calls)
    link = messenger_links.chat_link(db.session, "telegram", str(CHAT))
    assert messenger_links.state(link) is None


# Readings ------------------------------------------------------------------------------------


def test_reading_checked_then_saved_on_confirm(linked, client, fake):
    press(client, "rd")
    meters = fake.of("sendMessage")[-1]
    assert fake.buttons(meters)[0] == {"text": "Счётчик № SN-krd-1 · л/с 230000000001",
                                       "callback_data": f"rm:{linked.meter}"}
    press(client, f"rm:{linked.meter}")
    assert "Предыдущее показание (октябрь 2026 г.): 1\u00a0234\u00a0кВт·ч" in fake.texts()[-1]
    say(client, "1 334")
    check = fake.of("sendMessage")[-1]
    assert "Показание: 1\u00a0334\u00a0кВт·ч" in check["params"]["text"]
    assert "Расход с октябрь 2026 г.: 100\u00a0кВт·ч" in check["params"]["text"]
    assert "Ориентировочно к начислению: 735,00\u00a0₽" in check["params"]["text"]
    assert [b.get("callback_data") for b in fake.buttons(check)] == \
        ["ok", f"rm:{linked.meter}", "menu"]
    assert readings_of(linked.meter) == []  # nothing saved before «Подтвердить»
    press(client, "ok")
    assert fake.texts()[-1] == "Показания приняты."
    [reading] = readings_of(linked.meter)
    assert (reading.t1, reading.status, reading.submitted_by_id, reading.source) == \
        (Decimal("1334"), "accepted", linked.owner.id, "bot")
    press(client, "ok")  # pressed again: the step is over, nothing more is saved
    assert fake.texts()[-1] == dialog.EXPIRED_STEP
    assert len(readings_of(linked.meter)) == 1


def test_reading_below_the_previous_is_refused(linked, client, fake):
    press(client, f"rm:{linked.meter}")
    say(client, "1000")
    assert fake.texts()[-1].startswith("Показание: показание меньше предыдущего (1234)")
    press(client, "ok")
    assert readings_of(linked.meter) == []


def test_implausible_reading_needs_confirming_and_is_held(linked, client, fake):
    press(client, f"rm:{linked.meter}")
    say(client, "99999")
    check = fake.texts()[-1]
    assert "Показания выглядят неправдоподобно" in check
    assert "больше возможного при мощности" in check
    assert readings_of(linked.meter) == []
    press(client, "ok")
    assert "сохранены со статусом «На проверке»" in fake.texts()[-1]
    [reading] = readings_of(linked.meter)
    assert reading.status == "flagged"


def test_closed_window_takes_no_reading(linked, portal, client, fake):
    today = local_today(portal.config).day  # the portal's day (Moscow), not the machine's
    portal.config["READING_WINDOW_FIRST_DAY"] = portal.config["READING_WINDOW_LAST_DAY"] = \
        today % 28 + 1
    press(client, "rd")
    press(client, f"rm:{linked.meter}")
    assert all(t.startswith("Показания принимаются с") for t in fake.texts())
    link = messenger_links.chat_link(db.session, "telegram", str(CHAT))
    assert messenger_links.state(link) is None


def test_readings_are_throttled(linked, client, fake):
    press(client, f"rm:{linked.meter}")
    allowed = int(RULES["bot_reading"][0].split()[0])
    for _ in range(allowed):
        say(client, "не число")
    assert fake.texts()[-1].startswith("Показание: показание должно быть числом")
    say(client, "1334")
    assert fake.texts()[-1].startswith("Слишком много попыток")
    assert readings_of(linked.meter) == []
    say(client, "230000000001")  # typed account numbers share the limit
    assert fake.texts()[-1].startswith("Слишком много попыток")


def test_conversation_state_is_kept_server_side_and_expires(linked, client, fake):
    press(client, f"rm:{linked.meter}")
    link = messenger_links.chat_link(db.session, "telegram", str(CHAT))
    assert messenger_links.state(link) == {"step": "value", "meter": linked.meter}
    link.state_expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    db.session.commit()
    say(client, "1334")
    assert fake.texts()[-1] == dialog.EXPIRED_STEP
    assert readings_of(linked.meter) == []


# Unlinking -----------------------------------------------------------------------------------


def test_unlink_from_the_bot(linked, client, fake):
    press(client, "off")
    assert fake.texts()[-1] == dialog.ASK_UNLINK
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)) is not None
    press(client, "off!")
    assert fake.texts()[-1] == dialog.UNLINKED
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)) is None
    press(client, "bal")
    assert fake.texts()[-1] == dialog.HOW_TO_LINK


def test_unlink_from_the_profile_tells_the_chat(linked, client, fake):
    client.post("/auth/", data={"login": "owner", "password": PASSWORD})
    page = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Telegram-бот" in page and "Отключить" in page
    answer = client.post("/cabinet/profile/messenger/telegram/unlink")
    assert answer.status_code == 302
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)) is None
    assert fake.texts(CHAT)[-1].startswith("Бот отключён")
    say(client, "/menu")
    assert fake.texts()[-1] == dialog.HOW_TO_LINK


def test_profile_issues_a_link_with_qr_code(world, client, fake):
    client.post("/auth/", data={"login": "owner", "password": PASSWORD})
    page = client.post("/cabinet/profile/messenger/telegram/link").get_data(as_text=True)
    assert f"https://t.me/{USERNAME}?start=" in page and "<svg" in page
    assert "Пароль от личного кабинета в чат с ботом вводить не нужно" in page
    token = page.split("?start=")[1].split('"')[0]
    say(client, f"/start {token}")
    assert messenger_links.chat_link(db.session, "telegram", str(CHAT)).user_id == world.owner.id


# Notices -------------------------------------------------------------------------------------


def test_notice_delivered_by_the_transport(linked, portal, fake):
    owner = db.session.get(m.PortalUser, linked.owner.id)
    owner.notify_payments_email = owner.notify_payments_sms = False  # the chat alone
    db.session.commit()
    payment = linked.krd.ids["Payment"]
    assert notice_events.payment_received(db.session, [payment]) == 1
    [sent] = fake.of("sendMessage")
    assert str(sent["params"]["chat_id"]) == str(CHAT)
    assert sent["params"]["text"].startswith("Платёж")
    assert "500,00" in sent["params"]["text"] and "--" not in sent["params"]["text"]
    log = db.session.scalars(select(m.NoticeLog)).one()
    assert log.channels == "telegram"


def test_notice_the_chat_refuses_is_not_counted(linked, fake):
    owner = db.session.get(m.PortalUser, linked.owner.id)
    owner.notify_payments_email = owner.notify_payments_sms = False
    db.session.commit()
    fake.fail.append(("sendMessage", 403, "Forbidden: bot was blocked by the user"))
    assert notice_events.payment_received(db.session, [linked.krd.ids["Payment"]]) == 0
    assert db.session.scalar(select(func.count(m.NoticeLog.id))) == 0  # tried again next run
