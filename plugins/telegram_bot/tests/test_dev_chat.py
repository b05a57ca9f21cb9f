"""The development chat (TELEGRAM_DEV_CHAT): the bot against a loopback Bot API in the portal's
process, and the page /dev/telegram where the developer is the Telegram user. Everything goes
through the portal's real webhook: the page is driven with the test client, the bot's answers
are read back from the page and from the fake's records."""
from __future__ import annotations

import html
import logging
import re
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import select

import lk_telegram_bot
from app import models as m
from app.extensions import db
from app.production import problems
from app.services import messenger_links
from app.services.binding import bind_accounts
from lk_telegram_bot import dev_chat, dev_views, dialog
from lk_telegram_bot.dev_chat import CHAT_ID, DevChat
from lk_telegram_bot.testing import TOKEN
from tests.factories import PASSWORD, build_branch_world, make_user

PRESS = re.compile(r'name="call" value="(\d+)">(.*?)</form>', re.S)
BUTTON = re.compile(r'<button class="key" type="submit" name="button" value="(\d+)">([^<]*)'
                    r'</button>')


@pytest.fixture
def chat(dev) -> DevChat:
    return lk_telegram_bot.development_chat()


@pytest.fixture
def client(dev):
    return dev.test_client()


@pytest.fixture
def world(dev):
    """Krasnodar's account (with a bill) bound to ``owner``, Novorossiysk's to ``neighbour``."""
    session = db.session
    krd = build_branch_world(session, "krd", "Краснодарэнергосбыт", "Краснодар", 1)
    build_branch_world(session, "nvr", "Новороссийскэнергосбыт", "Новороссийск", 2)
    owner = make_user(session, dev.appbuilder.sm, username="owner", role="Resident",
                      kind="resident")
    neighbour = make_user(session, dev.appbuilder.sm, username="neighbour", role="Resident",
                          kind="resident")
    bind_accounts(session, owner.id, [("230000000001", "SN-krd-1")], None)
    bind_accounts(session, neighbour.id, [("230000000002", "SN-nvr-2")], None)
    return SimpleNamespace(owner=owner, neighbour=neighbour, account=krd.ids["PersonalAccount"])


def page(client) -> str:
    answer = client.get("/dev/telegram")
    assert answer.status_code == 200
    return html.unescape(answer.get_data(as_text=True))


def say(client, text):
    answer = client.post("/dev/telegram/send", data={"text": text})
    assert answer.status_code == 302 and answer.location.endswith("/dev/telegram#last")
    return answer


def buttons(text: str) -> dict[str, tuple[str, str]]:
    """The page's buttons to press, the latest of each label: label -> (call, button)."""
    found = {}
    for call, form in PRESS.findall(text):
        for index, label in BUTTON.findall(form):
            found[html.unescape(label)] = (call, index)
    return found


def press(client, label):
    call, index = buttons(page(client))[label]
    answer = client.post("/dev/telegram/press", data={"call": call, "button": index})
    assert answer.status_code == 302
    return answer


def link_from_the_profile(client) -> str:
    """Sign in as the owner, press «Подключить» in the profile, open «Открыть бота в Telegram»
    and press «Запустить»: the page as it is then."""
    client.post("/auth/", data={"login": "owner", "password": PASSWORD})
    profile = client.get("/cabinet/profile/").get_data(as_text=True)
    assert "Telegram-бот" in profile and "Подключить" in profile
    issued = html.unescape(client.post("/cabinet/profile/messenger/telegram/link")
                           .get_data(as_text=True))
    [url] = re.findall(r'href="(http://localhost/dev/telegram\?start=[A-Za-z0-9_-]+)"', issued)
    token = url.split("start=")[1]
    opened = html.unescape(client.get(url).get_data(as_text=True))
    assert "Запустить" in opened and f'value="/start {token}"' in opened
    say(client, f"/start {token}")
    return page(client)


# The chat -------------------------------------------------------------------------------------


def test_a_typed_message_reaches_the_webhook_and_the_answer_appears(chat, client):
    assert "Сообщений пока нет" in page(client)
    say(client, "привет")
    [sent] = chat.api.of("sendMessage")
    assert str(sent["params"]["chat_id"]) == str(CHAT_ID)
    assert sent["params"]["text"] == dialog.HOW_TO_LINK
    shown = page(client)
    assert "Сообщений пока нет" not in shown
    assert shown.index("привет") < shown.index(dialog.HOW_TO_LINK)
    say(client, "ещё раз")
    shown = page(client)
    assert shown.index("привет") < shown.index(dialog.HOW_TO_LINK) < shown.index("ещё раз") \
        < shown.rindex(dialog.HOW_TO_LINK)
    assert shown.count(dialog.HOW_TO_LINK) == 2
    client.post("/dev/telegram/clear")
    assert "Сообщений пока нет" in page(client) and chat.api.calls == []


def test_the_update_goes_through_the_secret_header(chat, client, monkeypatch):
    """The page posts as Telegram does: without the secret header the webhook refuses, the bot
    says nothing, and the page says why."""
    monkeypatch.setattr(dev_views, "SECRET_HEADER", "X-Not-The-Secret")
    say(client, "привет")
    assert chat.api.calls == []
    assert "кодом HTTP 403" in page(client)


def test_linking_through_the_profiles_one_time_link(world, chat, client):
    shown = link_from_the_profile(client)
    link = messenger_links.user_for_chat(db.session, "telegram", str(CHAT_ID))
    assert link is not None and link.user_id == world.owner.id
    assert "Готово, Тест: бот подключён к личному кабинету НЭСК" in shown
    assert {"Баланс и счета", "Передать показания", "Отключить бота"} <= set(buttons(shown))
    assert "Подключён" in client.get("/cabinet/profile/").get_data(as_text=True)
    # The link is spent: the same /start again is refused.
    token = db.session.scalars(select(m.MessengerLinkToken)).one()
    assert token.used_at is not None


def test_pressing_buttons_and_downloading_the_bill(world, chat, client):
    link_from_the_profile(client)
    press(client, "Баланс и счета")
    shown = page(client)
    assert "Нажата кнопка «Баланс и счета»" in shown
    assert "Лицевой счёт 230000000001" in shown and "Последний счёт" in shown
    assert "230000000002" not in shown
    [query] = chat.api.of("answerCallbackQuery")  # the button's spinner stopped
    assert query["params"]["callback_query_id"]
    assert re.search(rf'href="[^"]*/cabinet/pay/{world.account}"', shown)

    press(client, "Счёт PDF")
    shown = page(client)
    [document] = chat.api.of("sendDocument")
    [href] = re.findall(r'href="(/dev/telegram/file/\d+)">Скачать Счёт_230000000001_', shown)
    download = client.get(href)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == document["files"]["document"]["content"]
    assert download.data.startswith(b"%PDF")
    assert "attachment" in download.headers["Content-Disposition"]


def test_only_the_bots_own_buttons_and_files(world, chat, client):
    """A press names a recorded message of this chat and one of its callback buttons; a file
    a recorded document of this chat: anything else is 404 and posts nothing."""
    link_from_the_profile(client)
    press(client, "Баланс и счета")
    calls = len(chat.api.calls)
    url_button = next(i for i, c in enumerate(chat.api.calls) if c["method"] == "sendMessage"
                      and any("url" in b for b in chat.api.buttons(c)))
    greeting = next(i for i, c in enumerate(chat.api.calls) if c["method"] == "sendMessage")
    for form in ({"call": str(url_button), "button": "1"}, {"call": "9999", "button": "0"},
                 {"call": str(greeting), "button": "99"}, {"call": "x", "button": "0"}, {}):
        assert client.post("/dev/telegram/press", data=form).status_code == 404
    assert client.get(f"/dev/telegram/file/{greeting}").status_code == 404
    assert client.get("/dev/telegram/file/9999").status_code == 404
    # A notice to another chat is not this chat's.
    bot = lk_telegram_bot.settings()
    bot.client.perform([dialog.Reply("5550000", "чужое сообщение")])
    assert "чужое сообщение" not in page(client)
    assert client.post("/dev/telegram/press", data={"call": str(len(chat.api.calls) - 1),
                                                    "button": "0"}).status_code == 404
    assert len(chat.api.calls) == calls + 1


def test_the_token_and_secret_are_neither_shown_nor_logged(chat, client, caplog):
    caplog.set_level(logging.DEBUG)
    say(client, "привет")
    shown = page(client)
    assert chat.api.calls
    for secret in (chat.token, chat.secret, lk_telegram_bot.settings().path):
        assert secret not in shown and secret not in caplog.text
    assert chat.token not in repr(lk_telegram_bot.settings())
    # The development server's request line of the profile's one-time link.
    logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                                       "GET /dev/telegram?start=Zc-Ng3_QBj0T HTTP/1.1", 200, "-")
    assert '"GET /dev/telegram?start=… HTTP/1.1" 200' in caplog.text
    assert "Zc-Ng3_QBj0T" not in caplog.text


# On, off, production --------------------------------------------------------------------------


def configured(**config) -> Flask:
    flask_app = Flask(__name__)
    flask_app.config.update(config)
    lk_telegram_bot.configure(flask_app)
    return flask_app


@pytest.mark.parametrize("config, on", [
    ({}, True),
    ({"TELEGRAM_DEV_CHAT": "0"}, False),
    ({"PRODUCTION": True}, False),
    ({"TESTING": True}, False),
    ({"TESTING": True, "TELEGRAM_DEV_CHAT": "1"}, True),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": "s" * 20}, False),
])
def test_on_by_default_outside_production_and_the_tests(monkeypatch, config, on):
    monkeypatch.delenv("TELEGRAM_DEV_CHAT", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    flask_app = configured(**config)
    chat = lk_telegram_bot.development_chat(flask_app)
    try:
        assert (chat is not None) is on
        if on:
            assert lk_telegram_bot.settings(flask_app).client.api_url == chat.api.url
            assert chat.api.url.startswith("http://127.0.0.1:")
    finally:
        if chat is not None:
            chat.close()


def test_refused_in_production_and_beside_a_real_bot(monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="PRODUCTION is on but TELEGRAM_DEV_CHAT"):
        configured(TELEGRAM_DEV_CHAT="1", PRODUCTION=True)
    with pytest.raises(RuntimeError, match="TELEGRAM_DEV_CHAT and TELEGRAM_BOT_TOKEN"):
        configured(TELEGRAM_DEV_CHAT="yes", TELEGRAM_BOT_TOKEN=TOKEN)
    fit = {"PRODUCTION": "1", "SECRET_KEY": "k" * 40, "OTP_HASH_KEY": "o" * 40, "DEMO": "1"}
    assert not [p for p in problems(fit) if "TELEGRAM_DEV_CHAT" in p]
    [found] = [p for p in problems({**fit, "TELEGRAM_DEV_CHAT": "1"})
               if "TELEGRAM_DEV_CHAT" in p]
    assert "учебный чат" in found and "unset it" in found


def test_off_the_page_is_404_and_the_link_is_telegrams(portal):
    """The app of the other tests has a real token: no development chat, no page."""
    assert lk_telegram_bot.development_chat() is None
    client = portal.test_client()
    for url in ("/dev/telegram", "/dev/telegram/file/0"):
        assert client.get(url).status_code == 404
    assert client.post("/dev/telegram/send", data={"text": "привет"}).status_code == 404
    transport = portal.extensions["messenger_transports"]["telegram"]
    assert type(transport) is not dev_chat.DevChatTransport
