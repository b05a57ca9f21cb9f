"""Mailings: who gets one, what the letter looks like on a real SMTP server (aiosmtpd), retries
on 4xx and none on 5xx, a dropped connection, pause and cancel, a redelivered task that must
not resend, one-click unsubscribe, and the back-office flow with its branch scope."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask import g
from sqlalchemy import select

from app import models as m
from app.plugins.mail_smtp import SmtpBulkMailer
from app.services import auth, channels, mailing_letters, mailing_unsubscribe, mailings
from app.views.access import STAFF
from tests.conftest import free_port

#: Sending marks each recipient on a connection of its own (mailings._mark): the data must
#: be committed for it.
SENDS = pytest.mark.committed
PERIOD = dt.date(2026, 10, 1)  # the factories' readings are for October 2026
SETTINGS = mailings.Settings(chunk=2, max_attempts=3, backoff=0.0,
                             sender="НЭСК <noreply@nesk.example>", domain="nesk.example")


def link(user_id: int) -> str:
    return f"https://lk.example/unsubscribe/token-{user_id}"


@pytest.fixture
def residents(session, two_branches, make_user_fn):
    """Residents with e-mail: two in Krasnodar (one owes 235,00), one in Novorossiysk, and
    three who must never get a mailing (opted out, phone-only, consent withdrawn)."""
    krd, nvr = two_branches
    made = {}
    for name, world, extra in (
            ("anna", krd, {}), ("boris", krd, {}), ("vera", nvr, {}),
            ("optout", krd, {"mailing_opt_out": True}),
            ("phoneonly", krd, {"email_is_placeholder": True}),
            ("withdrawn", krd, {"pd_consent_withdrawn_at": dt.datetime(2026, 1, 1,
                                                                       tzinfo=dt.timezone.utc)})):
        user = make_user_fn(name, "Resident", kind="resident")
        for key, value in extra.items():
            setattr(user, key, value)
        session.add(m.AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
        made[name] = user
    session.commit()
    return made


def mailing(session, **fields) -> m.Mailing:
    row = m.Mailing(subject=fields.pop("subject", "Новости для {{ name }}"),
                    body=fields.pop("body", "Здравствуйте, {{ name }}!\n\nПо счёту {{ account }} "
                                            "долг {{ debt }} руб."), **fields)
    session.add(row)
    session.commit()
    return row


def queued(session, **fields) -> m.Mailing:
    row = mailing(session, **fields)
    mailings.queue(session, row.id, None, PERIOD)
    return row


def statuses(session, mailing_id: int) -> dict[str, str]:
    session.expire_all()
    return {r.email: r.status for r in session.execute(select(m.MailingRecipient).where(
        m.MailingRecipient.mailing_id == mailing_id)).scalars()}


def smtp_mailer(controller) -> SmtpBulkMailer:
    return SmtpBulkMailer({"MAIL_SERVER": controller.hostname, "MAIL_PORT": controller.port})


def deliver(session, row, mailer, worker="task-1", settings=SETTINGS) -> mailings.Outcome:
    return mailings.wait_and_deliver(lambda: mailings.deliver(
        session, row.id, worker, mailer, settings, link))


# Who receives it -------------------------------------------------------------------------------


def test_segment_takes_residents_with_real_email_who_take_mailings(session, residents,
                                                                   two_branches):
    krd, nvr = two_branches
    everyone = queued(session)
    assert set(statuses(session, everyone.id)) == {"anna@example.test", "boris@example.test",
                                                   "vera@example.test"}
    by_branch = queued(session, branch_id=krd.branch_id)
    assert set(statuses(session, by_branch.id)) == {"anna@example.test", "boris@example.test"}
    session.add(m.Payment(account_id=nvr.ids["PersonalAccount"], amount=Decimal("235.00"),
                          method="bank", status="succeeded"))
    session.commit()
    debtors = queued(session, min_debt=Decimal("100"))
    assert set(statuses(session, debtors.id)) == {"anna@example.test", "boris@example.test"}
    assert session.get(m.Mailing, debtors.id).segment == (
        "жители с электронной почтой; задолженность более 100,00 руб.")
    group = queued(session, tariff_group_id=nvr.ids["TariffGroup"])
    assert set(statuses(session, group.id)) == {"vera@example.test"}


def test_without_reading_leaves_out_who_has_read(session, residents, two_branches):
    krd, _ = two_branches
    assert set(statuses(session, queued(session, without_reading=True).id)) == set()
    session.execute(m.Reading.__table__.delete().where(
        m.Reading.meter_id == krd.ids["Meter"]))
    session.commit()
    assert set(statuses(session, queued(session, without_reading=True).id)) == {
        "anna@example.test", "boris@example.test"}


def test_queue_fixes_the_recipients_once(session, residents):
    row = queued(session)
    assert (row.status, row.total) == ("queued", 3)
    with pytest.raises(mailings.MailingError, match="только черновик"):
        mailings.queue(session, row.id, None, PERIOD)
    assert len(statuses(session, row.id)) == 3


def test_a_template_that_cannot_render_is_refused(session, residents):
    row = mailing(session, body="Здравствуйте, {{ nmae }}!")
    with pytest.raises(mailings.MailingError, match="Текст не получится подставить"):
        mailings.queue(session, row.id, None, PERIOD)
    assert session.get(m.Mailing, row.id).status == "draft"
    assert statuses(session, row.id) == {}


def test_staff_templates_run_sandboxed(session, residents):
    row = mailing(session, body="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(mailings.MailingError):
        mailings.queue(session, row.id, None, PERIOD)


# Delivery over real SMTP -------------------------------------------------------------------


@SENDS
def test_each_resident_gets_one_personal_letter(session, residents, smtp_server):
    controller, inbox = smtp_server
    row = queued(session)
    outcome = deliver(session, row, smtp_mailer(controller))
    assert (outcome.sent, outcome.failed) == (3, 0)
    assert sorted(r[0][0] for r in inbox.messages) == ["anna@example.test",
                                                       "boris@example.test",
                                                       "vera@example.test"]
    to, letter = next(r for r in inbox.messages if r[0] == ["anna@example.test"])
    assert letter["Subject"] == "Новости для Тест Anna"
    assert letter["From"] == "НЭСК <noreply@nesk.example>"
    assert letter["To"] == "anna@example.test"
    user_id = residents["anna"].id
    assert letter["List-Unsubscribe"] == f"<{link(user_id)}>"
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert letter["Message-ID"].startswith(f"<mailing-{row.id}.")
    text = letter.get_body(("plain",)).get_content()
    html = letter.get_body(("html",)).get_content()
    assert "Здравствуйте, Тест Anna!" in text and "По счёту 230000000001 долг 235,00 руб." in text
    assert f"Отписаться от рассылок: {link(user_id)}" in text
    assert "<p>Здравствуйте, Тест Anna!</p>" in html and link(user_id) in html
    session.expire_all()
    done = session.get(m.Mailing, row.id)
    assert (done.status, done.total, done.sent, done.failed, done.percent) == (
        "done", 3, 3, 0, 100)
    assert done.finished_at is not None


@pytest.mark.parametrize("subject", [
    "Plain ASCII subject", "Короткая тема",
    "Очень длинная тема письма, " * 6 + "ёЁ — «кавычки» 😀"])
def test_subjects_are_encoded_as_mail_readers_decode_them(subject):
    from email.header import decode_header, make_header

    encoded = mailing_letters.encode_header(subject)
    assert all(len(line) <= 78 for line in encoded.split("\r\n"))
    assert str(make_header(decode_header(encoded.replace("\r\n", "")))) == subject


class Picky(object):
    """An SMTP handler that refuses some recipients: 451 the first ``temporary`` times,
    550 always for ``gone``, and accepts the rest."""

    def __init__(self, temporary: dict[str, int], gone: set[str]):
        self.temporary, self.gone = temporary, gone
        self.tries: dict[str, int] = {}
        self.accepted: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.tries[address] = self.tries.get(address, 0) + 1
        if address in self.gone:
            return "550 5.1.1 No such user"
        if self.tries[address] <= self.temporary.get(address, 0):
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def picky_server():
    from aiosmtpd.controller import Controller

    servers = []

    def start(temporary=None, gone=()):
        handler = Picky(temporary or {}, set(gone))
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return controller, handler

    yield start
    for controller in servers:
        controller.stop()


@SENDS
def test_temporary_refusal_is_retried_and_permanent_is_not(session, residents, picky_server):
    controller, handler = picky_server(temporary={"anna@example.test": 2},
                                       gone={"vera@example.test"})
    row = queued(session)
    outcome = deliver(session, row, smtp_mailer(controller))
    assert sorted(handler.accepted) == ["anna@example.test", "boris@example.test"]
    assert handler.tries == {"anna@example.test": 3, "boris@example.test": 1,
                             "vera@example.test": 1}
    assert (outcome.sent, outcome.failed) == (2, 1)
    assert statuses(session, row.id) == {"anna@example.test": "sent",
                                         "boris@example.test": "sent",
                                         "vera@example.test": "bounced"}
    bounced = session.execute(select(m.MailingRecipient).where(
        m.MailingRecipient.email == "vera@example.test")).scalar_one()
    assert bounced.error.startswith("550") and bounced.attempts == 0
    session.expire_all()
    assert session.get(m.Mailing, row.id).failed == 1


@SENDS
def test_temporary_refusal_gives_up_after_the_last_attempt(session, residents, picky_server):
    controller, handler = picky_server(temporary={"anna@example.test": 99})
    row = queued(session)
    deliver(session, row, smtp_mailer(controller))
    assert handler.tries["anna@example.test"] == SETTINGS.max_attempts
    assert statuses(session, row.id)["anna@example.test"] == "failed"
    assert session.get(m.Mailing, row.id).status == "done"


@SENDS
def test_retries_wait_their_backoff(session, residents, picky_server):
    controller, _ = picky_server(temporary={"anna@example.test": 1})
    row = queued(session)
    slow = mailings.Settings(chunk=10, max_attempts=3, backoff=60.0)
    outcome = mailings.deliver(session, row.id, "task-1", smtp_mailer(controller), slow, link)
    assert outcome.sent == 2 and 50 < outcome.retry_in <= 60
    assert statuses(session, row.id)["anna@example.test"] == "pending"
    assert session.get(m.Mailing, row.id).status == "sending"


@SENDS
def test_a_server_that_is_down_loses_nothing(session, residents, smtp_server):
    controller, inbox = smtp_server
    row = queued(session)
    down = SmtpBulkMailer({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": free_port()})
    outcome = mailings.deliver(session, row.id, "task-1", down, SETTINGS, link)
    assert outcome.sent == 0 and outcome.retry_in is not None and outcome.connection_lost
    assert set(statuses(session, row.id).values()) == {"pending"}
    session.expire_all()
    assert {r.attempts for r in session.execute(select(m.MailingRecipient)).scalars()} == {0}
    deliver(session, row, smtp_mailer(controller))
    assert len(inbox.messages) == 3


@SENDS
def test_a_redelivered_task_sends_only_what_was_never_accepted(session, residents,
                                                               smtp_server):
    controller, inbox = smtp_server
    row = queued(session)
    # the worker died after claiming a chunk of two and getting one of them accepted
    claimed = mailings._claim(session, row.id, "task-7", 2)
    with session.get_bind().connect() as marks:
        mailings._mark(marks, claimed[0].id, "sent", sent_at=m.utcnow())
    deliver(session, row, smtp_mailer(controller), worker="task-7")
    assert sorted(r[0][0] for r in inbox.messages) == sorted(
        e for e in statuses(session, row.id) if e != claimed[0].email)
    assert set(statuses(session, row.id).values()) == {"sent"}


@SENDS
def test_pause_stops_and_resume_goes_on(session, residents, smtp_server):
    controller, inbox = smtp_server
    row = queued(session)
    mailings.pause(session, row.id, None)
    outcome = mailings.deliver(session, row.id, "task-1", smtp_mailer(controller), SETTINGS,
                               link)
    assert outcome.sent == 0 and inbox.messages == []
    mailings.resume(session, row.id, None)
    deliver(session, row, smtp_mailer(controller))
    assert len(inbox.messages) == 3
    with pytest.raises(mailings.MailingError, match="приостановленную"):
        mailings.resume(session, row.id, None)


def test_cancel_marks_what_was_not_sent(session, residents):
    row = queued(session)
    mailings.cancel(session, row.id, None)
    assert set(statuses(session, row.id).values()) == {"canceled"}
    session.expire_all()
    stopped = session.get(m.Mailing, row.id)
    assert (stopped.status, stopped.sent, stopped.failed) == ("canceled", 0, 3)
    with pytest.raises(mailings.MailingError):
        mailings.cancel(session, row.id, None)


# Unsubscribing -----------------------------------------------------------------------------


def test_one_click_unsubscribe(app, client, session, residents):
    anna = residents["anna"]
    token = mailing_unsubscribe.unsubscribe_token(app.config["SECRET_KEY"], anna.id)
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "Отписаться от рассылок" in page.get_data(as_text=True)
    assert client.get("/unsubscribe/forged-token").status_code == 404
    # a mail client's RFC 8058 POST carries no CSRF token
    app.config["WTF_CSRF_ENABLED"] = True
    done = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "больше не придут" in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(m.PortalUser, anna.id).mailing_opt_out is True
    assert "anna@example.test" not in statuses(session, queued(session).id)
    assert session.execute(select(m.AuditEvent).where(
        m.AuditEvent.action == "mailing.unsubscribed")).scalar_one().actor_id == anna.id


def test_the_letters_link_unsubscribes_and_codes_still_come(app, client, session, residents):
    anna = residents["anna"]
    letter_link = mailing_unsubscribe.unsubscribe_link(app.config, anna.id)
    assert letter_link.startswith(app.config["PORTAL_URL"].rstrip("/") + "/unsubscribe/")
    path = letter_link[len(app.config["PORTAL_URL"].rstrip("/")):]
    assert client.post(path).status_code == 200
    assert mailing_unsubscribe.user_for_token("another-secret", path.rsplit("/", 1)[1]) is None
    session.expire_all()
    assert session.get(m.PortalUser, anna.id).mailing_opt_out is True
    with app.test_request_context():
        auth.request_recovery_code(session, auth.Contact("email", "anna@example.test"), None)
    codes = [p.read_text() for p in Path(app.config["DEV_OUTBOX_DIR"]).glob("*-dev-email.json")]
    assert any("anna@example.test" in c and "Код НЭСК" in c for c in codes)


# The back office ---------------------------------------------------------------------------


@pytest.fixture
def staff(client, make_user_fn, login, two_branches):
    krd, _ = two_branches
    make_user_fn("mailer", STAFF, branch_id=krd.branch_id)
    g.pop("_login_user", None)
    assert login("mailer").status_code == 302
    return krd


def outbox_letters(app) -> list:
    folder = Path(app.config["DEV_OUTBOX_DIR"])
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(folder.glob("*-mailing.eml"))]


@SENDS
def test_staff_compose_preview_and_send(app, client, session, residents, staff):
    client.post("/mailingview/add", data={
        "subject": "Важно", "body": "Здравствуйте, {{ имя }}", "branch": staff.branch_id})
    with client.session_transaction() as flask_session:
        assert any("Текст не получится подставить" in text
                   for _, text in flask_session.pop("_flashes", []))
    assert session.execute(select(m.Mailing).where(m.Mailing.subject == "Важно")).first() is None

    client.post("/mailingview/add", data={
        "subject": "Важно для {{ name }}", "body": "Долг {{ debt }} руб.",
        "branch": staff.branch_id})
    row = session.execute(select(m.Mailing).where(
        m.Mailing.subject == "Важно для {{ name }}")).scalar_one()
    preview = client.get(f"/mailingview/preview/{row.id}").get_data(as_text=True)
    assert "Получателей сейчас: <b>2</b>" in preview and "Важно для Тест Anna" in preview

    sent = client.post("/mailingview/action_post", data={"action": "send", "rowid": row.id},
                       follow_redirects=True).get_data(as_text=True)
    assert "Рассылка поставлена в очередь: получателей 2." in sent
    session.expire_all()
    assert session.get(m.Mailing, row.id).status == "done"
    letters = outbox_letters(app)
    assert sorted(letter["To"] for letter in letters) == ["anna@example.test",
                                                          "boris@example.test"]
    assert "Долг 235,00 руб." in letters[0].get_body(("plain",)).get_content()
    listing = client.get("/mailingview/list/").get_data(as_text=True)
    assert 'aria-valuenow="100"' in listing

    again = client.post("/mailingview/action_post", data={"action": "send", "rowid": row.id},
                        follow_redirects=True).get_data(as_text=True)
    assert "Отправить можно только черновик" in again
    assert len(outbox_letters(app)) == 2


@pytest.mark.parametrize("min_debt, message", [
    ("sNaN", "Введите число."),  # WTForms' NumberRange raised on it: a server error
    ("1e20", "Число должно быть меньше"),  # past the Numeric(14, 2) column
    ("-5", "Сумма не может быть отрицательной."),
])
def test_the_debt_of_a_segment_is_a_sum_the_column_holds(client, session, staff, min_debt,
                                                        message):
    response = client.post("/mailingview/add", data={
        "subject": "Долг", "body": "Оплатите", "branch": staff.branch_id,
        "min_debt": min_debt})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert session.execute(select(m.Mailing).where(m.Mailing.subject == "Долг")).first() is None


def test_staff_cannot_preview_or_send_another_branchs_mailing(client, session, residents,
                                                              staff, two_branches):
    _, nvr = two_branches
    other = nvr.ids["Mailing"]
    assert client.get(f"/mailingview/preview/{other}").status_code == 404
    client.post("/mailingview/action_post", data={"action": "send", "rowid": other})
    session.expire_all()
    assert session.get(m.Mailing, other).status == "draft"
    assert statuses(session, other) == {}


# The hook ----------------------------------------------------------------------------------


class NamedMailer:
    def __init__(self, name: str, development: bool = False):
        self.name, self.development = name, development


def test_hook_register_bulk_mailers_chooses_by_name(app):
    from app.services.channels import ChannelConfigError

    assert app.extensions["bulk_mailer"].name == "dev-email"  # no MAIL_SERVER in tests
    offers = [[NamedMailer("smtp")], [NamedMailer("dev-email", development=True)]]
    assert channels.choose_mailer(offers, {"MAIL_SERVER": "mx"}).name == "smtp"
    assert channels.choose_mailer(offers, {"MAILING_TRANSPORT": "dev-email"}).name == "dev-email"
    with pytest.raises(ChannelConfigError, match="no plugin offers it"):
        channels.choose_mailer(offers, {"MAILING_TRANSPORT": "sendgrid"})
    with pytest.raises(ChannelConfigError, match="registered twice"):
        channels.choose_mailer([*offers, [NamedMailer("smtp")]], {})
    with pytest.raises(ChannelConfigError, match="development outbox"):
        channels.choose_mailer(offers, {"PRODUCTION": True})
