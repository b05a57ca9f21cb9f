"""Event notices: each event reaches the right users only, on the channels they chose, with
the bill's PDF for paperless users; letters are HTML with a text part (checked on a real SMTP
server); the scheduled ones never tell anyone twice; staff edit the wording (a bad one is
refused, a good one is used next), and the sandbox keeps templates away from Python."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import func, select

from app import models as m
from app.extensions import db
from app.services import acts, applications, notice_events, notice_wordings
from tests.signins import session_user_id
from tests.test_payments import OK_CARD, deliver, pay_card, start

OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)
KRD_ACCOUNT, NVR_ACCOUNT = "230000000001", "230000000002"


class Outbox:
    """The dev outbox the test app writes notices to (DEV_OUTBOX_DIR)."""

    def __init__(self, folder):
        self.folder = folder

    def messages(self, to: str | None = None, channel: str | None = None) -> list[dict]:
        if not self.folder.exists():
            return []
        found = [json.loads(p.read_text()) for p in sorted(self.folder.glob("*.json"))]
        return [n for n in found if (to is None or n["to"] == to)
                and (channel is None or n["channel"] == channel)]

    def emails(self, to: str | None = None) -> list[dict]:
        return self.messages(to, "dev-email")

    def sms(self, to: str | None = None) -> list[dict]:
        return self.messages(to, "dev-sms")


@pytest.fixture
def outbox(app, tmp_path):
    return Outbox(tmp_path / "outbox")


@pytest.fixture
def people(session, two_branches, make_user_fn):
    """A resident bound to Krasnodar's account, a neighbour bound to Novorossiysk's, and a
    stranger bound to nothing; each with an e-mail and a phone."""
    krd, nvr = two_branches
    resident = make_user_fn("resident", "Resident", kind="resident", phone="+79185550001")
    neighbour = make_user_fn("neighbour", "Resident", kind="resident", phone="+79185550002")
    stranger = make_user_fn("stranger", "Resident", kind="resident", phone="+79185550003")
    session.add_all([m.AccountBinding(user_id=resident.id,
                                      account_id=krd.ids["PersonalAccount"]),
                     m.AccountBinding(user_id=neighbour.id,
                                      account_id=nvr.ids["PersonalAccount"])])
    session.commit()
    return resident, neighbour, stranger


def logged(session, code: str | None = None) -> int:
    session.expire_all()
    query = select(func.count(m.NoticeLog.id))
    if code:
        query = query.where(m.NoticeLog.code == code)
    return session.scalar(query)


# ---------------------------------------------------------------------------------------------
# A new bill


def test_bill_ready_tells_each_user_of_their_own_bill_only(session, people, outbox):
    resident, neighbour, stranger = people
    assert notice_events.bill_ready(session, OCTOBER) == 2

    mine = outbox.emails(resident.email)
    assert len(mine) == 1
    assert mine[0]["subject"] == f"Счёт за октябрь 2026 г. по лицевому счёту {KRD_ACCOUNT}"
    assert "К оплате: 735,00 руб. до 10.11.2026." in mine[0]["text"]
    assert NVR_ACCOUNT not in mine[0]["text"]
    assert mine[0]["html"] is True and mine[0]["attachments"] == []
    assert [s["text"] for s in outbox.sms(resident.phone)] == [
        f"НЭСК: счёт за октябрь 2026 г. по л/с {KRD_ACCOUNT}, к оплате 735,00 руб. "
        "до 10.11.2026."]
    assert NVR_ACCOUNT in outbox.emails(neighbour.email)[0]["text"]
    assert outbox.messages(stranger.email) == [] and outbox.messages(stranger.phone) == []

    # Run again (a retried job, a second worker): nobody is told twice.
    before = len(outbox.messages())
    assert notice_events.bill_ready(session, OCTOBER) == 0
    assert notice_events.bills_ready_recently(session, dt.date(2026, 11, 2)) == 0
    assert len(outbox.messages()) == before
    assert logged(session, "bill_ready") == 2


def test_bill_ready_honours_topics_channels_and_placeholders(session, people, outbox):
    resident, neighbour, stranger = people
    resident.notify_bills_sms = False  # e-mail only
    neighbour.notify_bills_email = neighbour.notify_bills_sms = False  # nothing
    resident.notify_readings_email = False  # another topic: no effect here
    session.commit()
    assert notice_events.bill_ready(session, OCTOBER) == 1
    assert len(outbox.emails(resident.email)) == 1 and outbox.sms(resident.phone) == []
    assert outbox.messages(neighbour.email) == [] and outbox.messages(neighbour.phone) == []
    assert logged(session, "bill_ready") == 1  # the neighbour can still be told later

    # A phone-only user's placeholder address never gets a letter.
    session.execute(m.NoticeLog.__table__.delete())
    resident.email_is_placeholder, resident.notify_bills_sms = True, True
    session.commit()
    assert notice_events.bill_ready(session, OCTOBER) == 1
    assert len(outbox.emails(resident.email)) == 1  # still the one from before
    assert len(outbox.sms(resident.phone)) == 1


def test_paperless_users_get_the_bill_pdf_attached(session, people, outbox):
    resident, neighbour, _ = people
    resident.paperless = True
    session.commit()
    notice_events.bill_ready(session, OCTOBER)
    letter, = outbox.emails(resident.email)
    assert letter["attachments"] == [f"Счёт_{KRD_ACCOUNT}_2026-10.pdf"]
    assert "во вложении" in letter["text"]
    assert outbox.emails(neighbour.email)[0]["attachments"] == []
    assert "во вложении" not in outbox.emails(neighbour.email)[0]["text"]
    assert "attachments" not in outbox.sms(resident.phone)[0]


def test_letters_are_html_with_a_text_part_and_the_pdf_on_a_real_smtp_server(
        make_app, smtp_server, session, people):
    controller, inbox = smtp_server
    resident, neighbour, _ = people
    resident.paperless = True
    session.commit()
    smtp_app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port,
                        MAIL_DEFAULT_SENDER="noreply@nesk.example")
    with smtp_app.app_context():
        assert notice_events.bill_ready(db.session, OCTOBER) == 2
    letters = {tuple(rcpt): message for rcpt, message in inbox.messages}
    assert set(letters) == {(resident.email,), (neighbour.email,)}
    message = letters[(resident.email,)]
    assert message["Subject"] == f"Счёт за октябрь 2026 г. по лицевому счёту {KRD_ACCOUNT}"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "К оплате: 735,00 руб. до 10.11.2026." in text
    assert "Изменить настройки:" in text and "/cabinet/profile/notifications" in text
    assert "<html" in html and "<b>735,00 руб.</b>" in html and KRD_ACCOUNT in html
    attachment, = message.iter_attachments()
    assert attachment.get_filename() == f"Счёт_{KRD_ACCOUNT}_2026-10.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert list(letters[(neighbour.email,)].iter_attachments()) == []


# ---------------------------------------------------------------------------------------------
# The reading window


def add_reading(session, world, period: dt.date, value: str) -> None:
    session.add(m.Reading(meter_id=world.ids["Meter"], period=period, t1=Decimal(value),
                          source="web", status="accepted"))
    session.commit()


def test_reading_window_notices_go_to_accounts_without_a_reading(
        app, session, two_branches, people, outbox):
    krd, nvr = two_branches
    resident, neighbour, stranger = people
    portal = app.config["PORTAL_URL"].rstrip("/")

    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 14)) == 0  # not yet
    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 15)) == 2
    opened = outbox.emails(resident.email)[0]
    assert opened["subject"] == "Пора передать показания счётчика за ноябрь 2026 г."
    assert "С 15 ноября по 25 ноября" in opened["text"]
    assert f"{portal}/cabinet/readings/{krd.ids['PersonalAccount']}" in opened["text"]
    assert NVR_ACCOUNT not in opened["text"]
    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 16)) == 0  # told already

    add_reading(session, krd, NOVEMBER, "1400")  # the resident sends the reading
    assert notice_events.reading_window_closing_warning(session, dt.date(2026, 11, 21)) == 0
    assert notice_events.reading_window_closing_warning(session, dt.date(2026, 11, 22)) == 1
    assert len(outbox.emails(resident.email)) == 1  # only the opening notice
    warning = outbox.emails(neighbour.email)[-1]
    assert "по среднему потреблению или по нормативу" in warning["text"]
    assert f"{portal}/cabinet/readings/{nvr.ids['PersonalAccount']}" in warning["text"]
    assert f"{portal}/readings/" in warning["text"]
    assert "до 25 ноября" in outbox.sms(neighbour.phone)[-1]["text"]
    assert notice_events.reading_window_closing_warning(session, dt.date(2026, 11, 24)) == 0

    assert notice_events.reading_window_closed_without_reading(session, dt.date(2026, 11, 25)) == 0
    assert notice_events.reading_window_closed_without_reading(session, dt.date(2026, 11, 26)) == 1
    closed = outbox.emails(neighbour.email)[-1]
    assert closed["subject"] == "Показания за ноябрь 2026 г. не поступили"
    assert "с 15 декабря по 25 декабря" in closed["text"]
    assert notice_events.reading_window_closed_without_reading(session, dt.date(2026, 11, 30)) == 0
    assert outbox.messages(stranger.email) == [] and outbox.messages(stranger.phone) == []
    assert len(outbox.emails(resident.email)) == 1


def test_reading_notices_honour_the_readings_topic(session, people, outbox):
    resident, neighbour, _ = people
    resident.notify_readings_email = resident.notify_readings_sms = False
    neighbour.notify_readings_email = False
    session.commit()
    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 15)) == 1
    assert outbox.messages(resident.email) == [] and outbox.messages(resident.phone) == []
    assert outbox.emails(neighbour.email) == [] and len(outbox.sms(neighbour.phone)) == 1


def test_the_cli_and_the_celery_task_send_due_notices_once(app, runner, session, people,
                                                          outbox):
    result = runner.invoke(args=["notices", "send", "reading-window-opened",
                                 "--date", "2026-11-15"])
    assert result.exit_code == 0, result.output
    assert "отправлено: 2" in result.output
    again = runner.invoke(args=["notices", "send", "reading-window-opened",
                                "--date", "2026-11-15"])
    assert "отправлено: 0" in again.output
    bad = runner.invoke(args=["notices", "send", "high-bill", "--date", "15.11.2026"])
    assert bad.exit_code != 0 and "ГГГГ-ММ-ДД" in bad.output

    from app.tasks import send_notices

    assert send_notices.delay("reading-window-closed", "2026-11-26").get() == 2
    assert send_notices.delay("reading-window-closed", "2026-11-27").get() == 0
    schedule = [entry for entry in app.extensions["celery"].conf.beat_schedule.values()
                if entry["task"] == "lk_portal.send_notices"]
    assert sorted(entry["args"][0] for entry in schedule) == sorted(notice_events.SCHEDULED)


# ---------------------------------------------------------------------------------------------
# Payments


def test_hook_payment_status_changed_sends_the_payment_received_notice(
        client, session, two_branches, people, outbox, sandbox):
    krd, _ = two_branches
    resident, neighbour, _ = people
    g.pop("_login_user", None)
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = session_user_id(resident)
        flask_session["_fresh"] = True
    account = krd.ids["PersonalAccount"]
    pay_card(client, start(client, account, {account: "235"}), OK_CARD)
    assert outbox.messages(resident.email) == []  # pending: nothing received yet
    assert deliver(client, sandbox.sent[0]).status_code == 200
    letter, = outbox.emails(resident.email)
    assert letter["subject"] == "Платёж на 235,00 руб. получен"
    assert f"235,00 руб. на лицевой счёт {KRD_ACCOUNT}" in letter["text"]
    assert outbox.sms(resident.phone)[0]["text"] == (
        f"НЭСК: платёж 235,00 руб. по л/с {KRD_ACCOUNT} получен. Спасибо!")
    assert outbox.messages(neighbour.email) == []

    deliver(client, sandbox.sent[0])  # the gateway repeats itself
    assert len(outbox.emails(resident.email)) == 1
    payment_id = session.scalar(select(m.Payment.id).where(m.Payment.gateway == "sandbox"))
    assert notice_events.payment_received(session, [payment_id]) == 0


def test_payment_notice_honours_the_payments_topic(session, two_branches, people, outbox):
    krd, _ = two_branches
    resident, _, _ = people
    resident.notify_payments_sms = False
    session.commit()
    assert notice_events.payment_received(session, [krd.ids["Payment"]]) == 1
    assert len(outbox.emails(resident.email)) == 1 and outbox.sms(resident.phone) == []


# ---------------------------------------------------------------------------------------------
# Answers to the customer's own requests


def test_application_status_goes_to_the_requester_whatever_the_topics(
        session, two_branches, make_user_fn, outbox):
    krd, _ = two_branches
    applicant = make_user_fn("applicant", "Resident", kind="resident", phone="+79185550009")
    for topic in m.NoticeTopic.labels:
        setattr(applicant, f"notify_{topic}_email", False)
        setattr(applicant, f"notify_{topic}_sms", False)
    application = m.ContractApplication(user_id=applicant.id, branch_id=krd.branch_id,
                                        applicant_name="Петров П. П.", address="ул. Мира, 1")
    session.add(application)
    session.commit()

    applications.change_status(session, application.id, "in_review", actor_id=None)
    letter, = outbox.emails(applicant.email)
    assert letter["subject"] == f"Заявка № {application.id}: на рассмотрении"
    assert f"/cabinet/applications/{application.id}" in letter["text"]
    assert len(outbox.sms(applicant.phone)) == 1

    applicant.email_is_placeholder = True
    session.commit()
    applications.change_status(session, application.id, "rejected", actor_id=None,
                               reason="Нет выписки из ЕГРН")
    assert len(outbox.emails(applicant.email)) == 1  # not to a placeholder address
    assert "Причина: Нет выписки из ЕГРН" in outbox.sms(applicant.phone)[-1]["text"]


def test_application_status_names_what_was_applied_for(session, two_branches, make_user_fn,
                                                       outbox):
    """A verification application's notice speaks of the meter, a contract's of the contract
    and its kind: neither is called the other."""
    krd, _ = two_branches
    applicant = make_user_fn("applicant", "Resident", kind="resident", phone="+79185550009")
    contract = m.ContractApplication(user_id=applicant.id, branch_id=krd.branch_id,
                                     kind="new_owner", applicant_name="Петров П. П.",
                                     address="ул. Мира, 1")
    meter = m.ContractApplication(user_id=applicant.id, branch_id=krd.branch_id,
                                  kind="verification", applicant_name="Петров П. П.",
                                  address="ул. Мира, 1")
    session.add_all([contract, meter])
    session.commit()

    for application in (contract, meter):
        applications.change_status(session, application.id, "in_review", actor_id=None)
        applications.change_status(session, application.id, "approved", actor_id=None)
    _, about_contract, _, about_meter = outbox.emails(applicant.email)
    assert ("на заключение договора энергоснабжения (Смена собственника): одобрена"
            in about_contract["text"])
    assert "для подписания договора" in about_contract["text"]
    assert "на поверку или замену прибора учёта: одобрена.\n" in about_meter["text"]
    assert "(Смена собственника): одобрена.\n" in about_contract["text"]
    assert "заключение договора" not in about_meter["text"]
    assert "подписания договора" not in about_meter["text"]
    assert "на поверку счётчика" in outbox.sms(applicant.phone)[-1]["text"]


def test_act_ready_mails_the_requester_with_the_act(session, two_branches, make_user_fn,
                                                   outbox):
    krd, nvr = two_branches
    requester = make_user_fn("org-krd", "Business", kind="business",
                             organization_id=krd.ids["Organization"])
    colleague = make_user_fn("org-krd-2", "Business", kind="business",
                             organization_id=krd.ids["Organization"])
    other = make_user_fn("org-nvr", "Business", kind="business",
                         organization_id=nvr.ids["Organization"])
    act = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    act.requested_by_id = requester.id
    session.commit()
    acts.decide(session, act, None, "ready")
    letter, = outbox.emails(requester.email)
    assert letter["subject"] == "Акт сверки по договору № Д-krd-1 сформирован"
    assert "с 01.01.2026 по 30.09.2026" in letter["text"]
    assert len(letter["attachments"]) == 1 and letter["attachments"][0].endswith(".pdf")
    assert outbox.messages(colleague.email) == [] and outbox.messages(other.email) == []
    assert outbox.sms() == []  # acts are told by e-mail only


# ---------------------------------------------------------------------------------------------
# High bills


def add_charge(session, world, period: dt.date, amount: str) -> None:
    session.add(m.Charge(account_id=world.ids["PersonalAccount"], period=period,
                         amount=Decimal(amount), kwh=Decimal("0"), kind="metered"))
    session.commit()


def test_high_bill_alert_fires_only_above_the_ratio(app, session, two_branches, people,
                                                    outbox):
    krd, nvr = two_branches
    resident, neighbour, _ = people
    add_charge(session, krd, dt.date(2025, 10, 1), "400.00")  # 735 now: 1.84 times
    add_charge(session, nvr, dt.date(2025, 10, 1), "600.00")  # 735 now: 1.23 times
    today = dt.date(2026, 11, 3)

    app.config["HIGH_BILL_RATIO"] = Decimal("2")
    assert notice_events.high_bill_alert(session, today) == 0
    app.config["HIGH_BILL_RATIO"] = Decimal("1.5")
    assert notice_events.high_bill_alert(session, today) == 1
    letter, = outbox.emails(resident.email)
    assert letter["subject"] == "Начисление за октябрь 2026 г. заметно выше прошлогоднего"
    assert "735,00 руб. Это в 1,8 раза больше, чем за" in letter["text"]
    assert "октябрь 2025 г. (400,00 руб.)" in letter["text"]
    assert outbox.messages(neighbour.email) == [] and outbox.messages(neighbour.phone) == []
    assert notice_events.high_bill_alert(session, today) == 0  # once per account and month
    assert notice_events.high_bill_alert(session, dt.date(2026, 11, 20)) == 0


def test_high_bill_alert_warns_from_the_forecast_before_the_bill(app, session, two_branches,
                                                                 people, outbox):
    krd, _ = two_branches
    resident, neighbour, _ = people
    add_charge(session, krd, dt.date(2025, 11, 1), "1000.00")
    add_reading(session, krd, NOVEMBER, "1534")  # 300 kWh x 7.35 = 2 205,00
    today = dt.date(2026, 11, 20)
    app.config["HIGH_BILL_RATIO"] = Decimal("2.5")
    assert notice_events.high_bill_alert(session, today) == 0
    app.config["HIGH_BILL_RATIO"] = Decimal("1.5")
    assert notice_events.high_bill_alert(session, today) == 1
    letter, = outbox.emails(resident.email)
    assert letter["subject"].startswith("Прогноз начисления за ноябрь 2026 г.")
    assert "2 205,00 руб." in letter["text"].replace("\xa0", " ")
    assert "по переданным вами показаниям" in letter["text"]
    assert outbox.messages(neighbour.email) == []


# ---------------------------------------------------------------------------------------------
# Staff edit the wording


@pytest.fixture
def staff(client, two_branches, make_user_fn, login):
    krd, _ = two_branches
    user = make_user_fn("operator", "Staff", branch_id=krd.branch_id, kind="staff")
    g.pop("_login_user", None)
    assert login(user.username).status_code == 302
    return user


def template_row(session, code: str) -> m.NoticeTemplate:
    session.expire_all()
    return session.execute(select(m.NoticeTemplate).where(m.NoticeTemplate.code == code)
                           ).scalar_one()


def form(row: m.NoticeTemplate, **changes) -> dict:
    return {"subject": row.subject, "text_body": row.text_body, "html_body": row.html_body,
            "sms_body": row.sms_body or "", **changes}


@pytest.mark.parametrize("field, bad, message", [
    ("text_body", "{{ ''.__class__ }}", "служебным данным"),
    ("html_body", "{{ period.__class__.__mro__ }}", "служебным данным"),
    ("subject", "Счёт за {{ perod }}", "неизвестная подстановка"),
    ("text_body", "{% if to_pay %}не закрыто", "Ошибка в записи шаблона"),
    ("sms_body", "{{ account.upper.__globals__ }}", "служебным данным"),
    ("subject", "  ", "Заполните поле «тема»"),
])
def test_staff_cannot_save_a_template_that_does_not_render(client, session, people, staff,
                                                           field, bad, message):
    assert client.get("/noticetemplateview/list/").status_code == 200
    row = template_row(session, "bill_ready")
    page = client.post(f"/noticetemplateview/edit/{row.id}", data=form(row, **{field: bad}))
    assert message in page.get_data(as_text=True)
    saved = template_row(session, "bill_ready")
    assert saved.updated_at is None and getattr(saved, field) == getattr(row, field)


def test_staff_edit_is_used_by_the_next_notice(client, session, people, staff, outbox):
    assert client.get("/noticetemplateview/list/").status_code == 200
    row = template_row(session, "bill_ready")
    show = client.get(f"/noticetemplateview/show/{row.id}").get_data(as_text=True)
    assert "Просмотр с примерными данными" in show
    preview = client.get(f"/noticetemplateview/preview/{row.id}").get_data(as_text=True)
    assert "Счёт за октябрь 2026 г. по лицевому счёту 230000000001" in preview
    assert "{{ amount_due }}" in preview  # the list of placeholders

    response = client.post(f"/noticetemplateview/edit/{row.id}", data=form(
        row, subject="Ваш счёт за {{ period }} готов",
        sms_body="НЭСК: счёт {{ amount_due }} руб."))
    assert response.status_code == 302
    saved = template_row(session, "bill_ready")
    assert saved.updated_at is not None and saved.updated_by_id == staff.id

    resident = people[0]
    notice_events.bill_ready(session, OCTOBER)
    assert outbox.emails(resident.email)[0]["subject"] == "Ваш счёт за октябрь 2026 г. готов"
    assert outbox.sms(resident.phone)[0]["text"] == "НЭСК: счёт 735,00 руб."
    assert session.scalar(select(func.count(m.AuditEvent.id)).where(
        m.AuditEvent.action == "notice_template.updated")) == 1


def test_other_roles_cannot_edit_templates(client, session, two_branches, make_user_fn, login):
    notice_wordings.ensure_templates(session)
    row = template_row(session, "bill_ready")
    user = make_user_fn("finance", "Finance", kind="staff")
    g.pop("_login_user", None)
    login(user.username)
    response = client.post(f"/noticetemplateview/edit/{row.id}",
                           data=form(row, subject="Взлом"))
    assert response.status_code in (302, 403)
    assert template_row(session, "bill_ready").subject == row.subject


# ---------------------------------------------------------------------------------------------
# The sandbox and the defaults


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ name.__class__.__base__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
])
def test_the_sandbox_refuses_python_internals(app, source):
    with pytest.raises(notice_wordings.NoticeTemplateError, match="служебным данным|неизвестная"):
        notice_wordings.check_part("bill_ready", "text", source)


def test_a_wording_that_fails_on_real_data_falls_back_to_the_default(session, people, outbox):
    notice_wordings.ensure_templates(session)
    row = template_row(session, "bill_ready")
    row.subject, row.updated_at = "{{ ''.__class__.__mro__ }}", m.utcnow()  # bypassing checks
    session.commit()
    assert notice_events.bill_ready(session, OCTOBER) == 2
    assert outbox.emails(people[0].email)[0]["subject"].startswith("Счёт за октябрь 2026 г.")


def test_every_default_renders_and_untouched_rows_follow_the_defaults(app, session):
    files = {path.stem for path in notice_wordings.WORDINGS_DIR.glob("*.jinja")}
    assert files == set(notice_wordings.NOTICES)  # a file per notice, none left over
    for code in notice_wordings.NOTICES:
        default = notice_wordings.default_wording(code)
        letter = notice_wordings.check_template(code, default.subject, default.text,
                                                default.html, default.sms)
        assert letter.subject and letter.text and "<html" in letter.html, code
    assert notice_wordings.ensure_templates(session) == len(notice_wordings.NOTICES)
    row = template_row(session, "payment_received")
    row.subject = "Старый текст"
    session.commit()
    assert notice_wordings.ensure_templates(session) == 1  # never edited by staff: refreshed
    assert template_row(session, "payment_received").subject == \
        notice_wordings.default_wording("payment_received").subject


def test_a_default_part_is_its_block_as_written():
    """The newline after the opening tag is left out; everything up to the closing tag is
    kept, a last newline too (or its absence); a part without a block is None."""
    bill = notice_wordings.default_wording("bill_ready")
    assert bill.subject == "Счёт за {{ period }} по лицевому счёту {{ account }}"
    assert bill.text.startswith("Здравствуйте{% if name %}") and bill.text.endswith("}}\n")
    assert notice_wordings.default_wording("application_status").text.endswith("{% endif %}")
    assert notice_wordings.default_wording("act_ready").sms is None
    assert notice_wordings.default_parts("application_status").get("push") is None
