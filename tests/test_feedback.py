"""Feedback: the public form (checks, honeypot, rate limit), the resident's form tied to a
bound account, the staff inbox (take into work, reply by e-mail through a real SMTP server,
close) with every step tried by another branch's operator, and the contacts page."""
from __future__ import annotations

import re

import pytest
from flask import g
from sqlalchemy import event, func, select

from app import models as m
from app.extensions import db
from app.services import feedback
from app.services.binding import bind_accounts
from app.services.throttle import Throttled
from app.views.access import RESIDENT, STAFF
from tests.conftest import free_port
from tests.factories import PASSWORD
from tests.signins import session_user_id

SENT = "Спасибо! Обращение отправлено в филиал."


def page_text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


def count(session, model=m.Feedback) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def public_form(branch_id: int, **changes) -> dict:
    form = {"name": "Анна Смирнова", "email": "Anna.Smirnova@Example.com",
            "phone": "8 (918) 765-43-21", "branch": str(branch_id),
            "topic": "Начисления и счета", "message": "Почему выросла сумма в ноябре?",
            "consent": "1", "website": ""}
    form.update(changes)
    return form


# The public form -----------------------------------------------------------------------------


def test_public_message_is_saved_for_the_chosen_branch(client, session, two_branches):
    _, nvr = two_branches
    page = page_text(client.get("/feedback/"))
    assert "Обратная связь" in page and "Новороссийскэнергосбыт" in page
    assert 'name="website"' in page  # the honeypot is in the form
    response = client.post("/feedback/", data=public_form(nvr.branch_id),
                           follow_redirects=True)
    assert response.status_code == 200 and SENT in page_text(response)
    row = session.execute(select(m.Feedback).where(m.Feedback.author_name.is_not(None))
                          ).scalar_one()
    assert (row.user_id, row.branch_id, row.status) == (None, nvr.branch_id, "new")
    assert (row.author_name, row.author_email, row.author_phone) == (
        "Анна Смирнова", "anna.smirnova@example.com", "+79187654321")
    assert row.author == "Анна Смирнова"
    event_row = session.execute(select(m.AuditEvent).where(
        m.AuditEvent.action == "feedback.created", m.AuditEvent.object_id == str(row.id))
    ).scalar_one()
    assert event_row.actor_id is None


@pytest.mark.parametrize("changes, field, message", [
    ({"name": "  "}, "name", feedback.NAME_EMPTY),
    ({"name": "А" * 161}, "name", feedback.NAME_LONG),
    ({"email": ""}, "email", feedback.EMAIL_BAD),
    ({"email": "anna@"}, "email", feedback.EMAIL_BAD),
    ({"phone": "12345"}, "phone", feedback.PHONE_BAD),
    ({"branch": ""}, "branch", feedback.BRANCH_UNKNOWN),
    ({"branch": "999999"}, "branch", feedback.BRANCH_UNKNOWN),
    ({"branch": "1; drop"}, "branch", feedback.BRANCH_UNKNOWN),
    ({"branch": "230000000001"}, "branch", feedback.BRANCH_UNKNOWN),  # past the id column
    ({"branch": "²"}, "branch", feedback.BRANCH_UNKNOWN),  # a digit to isdigit(), not int()
    ({"topic": ""}, "topic", feedback.TOPIC_EMPTY),
    ({"message": "т" * 4001}, "message", feedback.MESSAGE_LONG),
    ({"consent": ""}, "consent", feedback.CONSENT_MISSING),
])
def test_public_form_refuses_bad_input_and_saves_nothing(client, session, two_branches,
                                                         changes, field, message):
    krd, _ = two_branches
    before = count(session)
    response = client.post("/feedback/", data=public_form(krd.branch_id, **changes))
    assert response.status_code == 400
    page = page_text(response)
    assert "Обращение не отправлено: исправьте отмеченные поля." in page
    assert f'id="{field}-error" role="alert">{message}<' in page
    assert count(session) == before


def test_a_nul_byte_is_refused_before_the_form(client, session, two_branches):
    """PostgreSQL cannot store it: the whole request is refused, in Russian."""
    krd, _ = two_branches
    before = count(session)
    response = client.post("/feedback/", data=public_form(krd.branch_id, message="Текст\x00"))
    assert response.status_code == 400 and "Неверный запрос" in page_text(response)
    assert count(session) == before


def test_public_form_keeps_what_was_typed_after_a_refusal(client, two_branches):
    krd, _ = two_branches
    page = page_text(client.post("/feedback/", data=public_form(krd.branch_id, email="x")))
    assert 'value="Анна Смирнова"' in page and "Почему выросла сумма в ноябре?" in page
    assert f'<option value="{krd.branch_id}" selected>' in page


def test_the_honeypot_pretends_success_and_saves_nothing(client, session, two_branches):
    krd, _ = two_branches
    before = count(session)
    trapped = client.post("/feedback/", data=public_form(krd.branch_id,
                                                         website="http://spam.example"))
    assert trapped.status_code == 302 and trapped.location.endswith("/feedback/")
    assert SENT in page_text(client.get("/feedback/"))
    assert count(session) == before
    assert feedback.create_public(
        session, name="Бот", email="bot@example.com", phone="", branch=krd.branch_id,
        topic="Т", message="Т", consent=True, trap="x") is None
    assert count(session) == before


def test_public_form_is_rate_limited_per_ip(client, session, two_branches):
    """Five messages an hour from one address (the fifth still goes), whoever they claim to
    be; another address is not held up."""
    krd, _ = two_branches
    for n in range(5):
        ok = client.post("/feedback/", data=public_form(krd.branch_id,
                                                        email=f"person{n}@example.com"))
        assert ok.status_code == 302, n
    before = count(session)
    held = client.post("/feedback/", data=public_form(krd.branch_id,
                                                      email="another@example.com"))
    assert held.status_code == 429
    assert "Слишком много обращений за короткое время" in page_text(held)
    assert count(session) == before == 2 + 5  # the branch worlds' own rows and the five
    other = client.post("/feedback/", data=public_form(krd.branch_id,
                                                       email="another@example.com"),
                        environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 302 and count(session) == before + 1


def test_public_form_is_rate_limited_per_sender_across_addresses(session, two_branches):
    krd, _ = two_branches
    for n in range(5):
        assert feedback.create_public(
            session, name="Анна", email="anna@example.com", phone=None, branch=krd.branch_id,
            topic="Тема", message=f"Текст {n}", consent=True, ip=f"10.0.0.{n}")
    with pytest.raises(Throttled):
        feedback.create_public(
            session, name="Анна", email="ANNA@example.com", phone=None, branch=krd.branch_id,
            topic="Тема", message="Текст", consent=True, ip="10.0.0.99")
    assert count(session) == 2 + 5  # the two branches' own rows and the five


def test_robots_caught_by_the_honeypot_count_against_their_ip(client, two_branches):
    krd, _ = two_branches
    for _ in range(5):
        client.post("/feedback/", data=public_form(krd.branch_id, website="x"))
    assert client.post("/feedback/", data=public_form(krd.branch_id)).status_code == 429


def test_the_public_pages_link_contacts_and_feedback(client):
    for path in ("/auth/", "/readings/", "/feedback/"):
        page = page_text(client.get(path))
        assert 'href="/contacts/"' in page and 'href="/feedback/"' in page, path


# The resident's form -------------------------------------------------------------------------


def test_resident_writes_about_a_bound_account(client, session, owner):
    user, krd, _ = owner
    assert client.get("/feedback/").location.endswith("/cabinet/feedback/")
    page = page_text(client.get("/cabinet/feedback/"))
    assert "230000000001" in page and "230000000002" not in page
    assert 'href="/cabinet/feedback/"' in page  # the cabinet's menu
    response = client.post("/cabinet/feedback/", data={
        "account": krd.ids["PersonalAccount"], "topic": "Показания",
        "message": "Счётчик заменили"}, follow_redirects=True)
    assert "отправлено в Краснодарэнергосбыт" in page_text(response)
    row = session.execute(select(m.Feedback).where(m.Feedback.user_id == user.id)).scalar_one()
    assert (row.branch_id, row.account_id) == (krd.branch_id, krd.ids["PersonalAccount"])
    assert "Счётчик заменили" in page_text(client.get("/cabinet/feedback/"))


@pytest.mark.parametrize("account", ["other", "", "abc", "999999", "230000000001", "²"])
def test_resident_cannot_write_about_another_account(client, session, owner, account):
    user, _, nvr = owner
    raw = nvr.ids["PersonalAccount"] if account == "other" else account
    before = count(session)
    response = client.post("/cabinet/feedback/", data={
        "account": raw, "topic": "Чужой счёт", "message": "Текст"})
    assert response.status_code == 400
    assert f'id="account-error" role="alert">{feedback.ACCOUNT_UNKNOWN}<' in page_text(response)
    assert count(session) == before
    with pytest.raises(feedback.FeedbackError):
        feedback.create_for_resident(session, user_id=user.id, account=raw, topic="Т",
                                     message="Т")
    assert count(session) == before


def test_resident_sees_only_own_messages(client, session, owner, make_user_fn):
    user, krd, nvr = owner
    neighbour = session.execute(select(m.PortalUser).where(
        m.PortalUser.username == "neighbour")).scalar_one()
    session.add(m.Feedback(user_id=neighbour.id, branch_id=nvr.branch_id,
                           topic="Соседская тема", message="Соседский текст"))
    session.commit()
    page = page_text(client.get("/cabinet/feedback/"))
    assert "Соседская тема" not in page and "Обращений пока не было." in page


def test_anonymous_visitor_is_sent_to_sign_in_from_the_cabinet_page(client):
    response = client.get("/cabinet/feedback/")
    assert response.status_code == 302 and "/auth/" in response.location


def test_organization_user_goes_to_the_business_form(client, make_user_fn, two_branches):
    krd, _ = two_branches
    user = make_user_fn("romashka", "Business", kind="business",
                        organization_id=krd.ids["Organization"], branch_id=krd.branch_id)
    with client.session_transaction() as s:
        s["_user_id"], s["_fresh"] = session_user_id(user), True
    assert client.get("/feedback/").location.endswith("/business/feedback")


# Staff: the inbox, replies by e-mail, closing ------------------------------------------------


@pytest.fixture
def mail_app(make_app, smtp_server):
    """The portal with a real SMTP server; cleaned up by ``app``."""
    controller, inbox = smtp_server
    flask_app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port,
                         MAIL_DEFAULT_SENDER="noreply@nesk.example")
    with flask_app.app_context():
        yield flask_app, inbox
        db.session.rollback()


def staff_client(flask_app, username: str, branch_id: int):
    from tests.factories import make_user

    make_user(db.session, flask_app.appbuilder.sm, username=username, role=STAFF,
              branch_id=branch_id)
    web = flask_app.test_client()
    g.pop("_login_user", None)
    assert web.post("/login/", data={"username": username, "password": PASSWORD}
                    ).status_code == 302
    return web


def test_reply_to_a_public_message_is_emailed_to_its_author(mail_app, session, two_branches):
    flask_app, inbox = mail_app
    krd, _ = two_branches
    row = feedback.create_public(
        db.session, name="Анна Смирнова", email="anna@example.com", phone=None,
        branch=krd.branch_id, topic="Перерасчёт", message="Прошу сделать перерасчёт",
        consent=True)
    staff = staff_client(flask_app, "oper_krd", krd.branch_id)
    inbox_page = page_text(staff.get("/feedbackview/list/"))
    assert "Перерасчёт" in inbox_page and "Анна Смирнова" in inbox_page
    form = page_text(staff.get(f"/feedbackview/reply/{row.id}"))
    assert "Ответ уйдёт на anna@example.com" in form
    empty = staff.post(f"/feedbackview/reply/{row.id}", data={"reply": "  "})
    assert empty.status_code == 400 and feedback.REPLY_EMPTY in page_text(empty)
    assert inbox.messages == []
    done = staff.post(f"/feedbackview/reply/{row.id}",
                      data={"reply": "Перерасчёт сделан,\nсумма уменьшится."},
                      follow_redirects=True)
    assert "Ответ сохранён и отправлен автору." in page_text(done)
    (recipients, letter), = inbox.messages
    assert recipients == ["anna@example.com"]
    assert letter["Subject"] == f"Ответ на обращение № {row.id}"
    body = letter.get_body().get_content().replace("\r\n", "\n")
    assert "Здравствуйте, Анна Смирнова!" in body
    assert f"Филиал «Краснодарэнергосбыт» ответил на ваше обращение № {row.id}" in body
    assert "Перерасчёт сделан,\nсумма уменьшится." in body and "8-800-600-02-20" in body
    db.session.expire_all()
    row = db.session.get(m.Feedback, row.id)
    assert row.status == "answered" and row.reply_sent_at is not None
    assert row.answered_by.username == "oper_krd" and row.assigned_to.username == "oper_krd"
    again = staff.post(f"/feedbackview/reply/{row.id}", data={"reply": "Ещё раз"},
                       follow_redirects=True)
    assert feedback.ALREADY_ANSWERED in page_text(again) and len(inbox.messages) == 1


def test_reply_to_a_resident_is_emailed_and_shows_in_the_cabinet(mail_app, two_branches,
                                                                 session):
    flask_app, inbox = mail_app
    krd, _ = two_branches
    from tests.factories import make_user

    resident = make_user(db.session, flask_app.appbuilder.sm, username="zhilec", role=RESIDENT,
                         kind="resident")
    bind_accounts(db.session, resident.id, [("230000000001", "SN-KRD-1")], None)
    row = feedback.create_for_resident(db.session, user_id=resident.id,
                                       account=krd.ids["PersonalAccount"], topic="Счётчик",
                                       message="Когда поверка?")
    staff = staff_client(flask_app, "oper_krd", krd.branch_id)
    staff.post(f"/feedbackview/reply/{row.id}", data={"reply": "Поверка в марте."})
    (recipients, letter), = inbox.messages
    assert recipients == ["zhilec@example.test"]
    assert "http://localhost/cabinet/feedback/" in letter.get_body().get_content()
    web = flask_app.test_client()
    g.pop("_login_user", None)  # requests share the test's app context, and so its g
    web.post("/auth/", data={"login": "zhilec", "password": PASSWORD})
    page = page_text(web.get("/cabinet/feedback/"))
    assert "Поверка в марте." in page and "Отвечено" in page


def test_a_failed_email_does_not_undo_the_reply(make_app, two_branches):
    krd, _ = two_branches
    dead = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    with dead.app_context():
        row = feedback.create_public(
            db.session, name="Анна", email="anna@example.com", phone=None,
            branch=krd.branch_id, topic="Тема", message="Текст", consent=True)
        staff = staff_client(dead, "oper_krd", krd.branch_id)
        response = staff.post(f"/feedbackview/reply/{row.id}", data={"reply": "Ответ"},
                              follow_redirects=True)
        assert "отправить его автору не удалось" in page_text(response)
        db.session.expire_all()
        row = db.session.get(m.Feedback, row.id)
        assert (row.status, row.reply, row.reply_sent_at) == ("answered", "Ответ", None)
        db.session.rollback()


def sign_in_staff(client, make_user_fn, login, username: str, branch_id: int):
    user = make_user_fn(username, STAFF, branch_id=branch_id)
    g.pop("_login_user", None)
    assert login(username).status_code == 302
    return user


def test_staff_take_into_work_and_close(client, session, two_branches, make_user_fn, login):
    krd, _ = two_branches
    oper = sign_in_staff(client, make_user_fn, login, "oper_krd", krd.branch_id)
    pk = krd.ids["Feedback"]
    show = page_text(client.get(f"/feedbackview/show/{pk}"))
    for button in ("Взять в работу", "Ответить", "Закрыть"):
        assert button in show, button
    assert client.post(f"/feedbackview/action/assign/{pk}").status_code == 302
    session.expire_all()
    row = session.get(m.Feedback, pk)
    assert row.assigned_to_id == oper.id and row.assigned_at is not None
    assert client.post(f"/feedbackview/action/reply/{pk}").location.endswith(
        f"/feedbackview/reply/{pk}")
    assert client.get(f"/feedbackview/edit/{pk}").location.endswith(f"/feedbackview/reply/{pk}")
    client.post("/feedbackview/action_post", data={"action": "close", "rowid": [pk]})
    session.expire_all()
    row = session.get(m.Feedback, pk)
    assert row.status == "closed" and row.closed_at is not None
    refused = client.post(f"/feedbackview/reply/{pk}", data={"reply": "Поздно"},
                          follow_redirects=True)
    assert feedback.ALREADY_CLOSED in page_text(refused)
    session.expire_all()
    assert session.get(m.Feedback, pk).reply is None
    actions = set(session.scalars(select(m.AuditEvent.action).where(
        m.AuditEvent.object_type == "feedback", m.AuditEvent.object_id == str(pk))))
    assert actions == {"feedback.assigned", "feedback.closed"}


def test_staff_of_another_branch_can_do_nothing(client, session, two_branches, make_user_fn,
                                                login):
    krd, nvr = two_branches
    sign_in_staff(client, make_user_fn, login, "oper_nvr", nvr.branch_id)
    theirs, own = krd.ids["Feedback"], nvr.ids["Feedback"]
    before = session.execute(select(m.Feedback.status, m.Feedback.assigned_to_id,
                                    m.Feedback.reply).where(m.Feedback.id == theirs)).one()
    events = count(session, m.AuditEvent)
    inbox = page_text(client.get("/feedbackview/list/"))
    assert "Новороссийскэнергосбыт" in inbox and "Краснодарэнергосбыт" not in inbox
    filtered = page_text(client.get(f"/feedbackview/list/?_flt_0_branch={krd.branch_id}"))
    assert "Вопрос" not in filtered
    for path in (f"/feedbackview/show/{theirs}", f"/feedbackview/edit/{theirs}",
                 f"/feedbackview/reply/{theirs}"):
        assert client.get(path).status_code == 404, path
    for path, data in (
            (f"/feedbackview/reply/{theirs}", {"reply": "Чужой ответ"}),
            (f"/feedbackview/edit/{theirs}", {"topic": "Чужая", "message": "Чужой"}),
            (f"/feedbackview/action/assign/{theirs}", {}),
            (f"/feedbackview/action/reply/{theirs}", {}),
            (f"/feedbackview/action/close/{theirs}", {}),
            ("/feedbackview/action_post", {"action": "assign", "rowid": [theirs]}),
            ("/feedbackview/action_post", {"action": "close", "rowid": [own, theirs]}),
            (f"/feedbackview/delete/{theirs}", {})):
        response = client.post(path, data=data)
        assert response.status_code in (403, 404) or (
            response.status_code == 302 and "/login/" in response.location), path
    session.expire_all()
    after = session.execute(select(m.Feedback.status, m.Feedback.assigned_to_id,
                                   m.Feedback.reply).where(m.Feedback.id == theirs)).one()
    assert after == before
    assert session.get(m.Feedback, own).status == "new"  # a mixed selection changes nothing
    assert count(session, m.AuditEvent) == events
    for step in (feedback.assign, feedback.close):
        with pytest.raises(feedback.FeedbackNotFound):
            step(session, theirs, staff_id=1, scope=nvr.branch_id)
    with pytest.raises(feedback.FeedbackNotFound):
        feedback.reply(session, theirs, "Ответ", staff_id=1, scope=nvr.branch_id)


def test_staff_list_shows_only_own_branch_and_public_authors(client, session, two_branches,
                                                            make_user_fn, login):
    krd, nvr = two_branches
    feedback.create_public(session, name="Пётр Гость", email="petr@example.com", phone=None,
                           branch=krd.branch_id, topic="Гостевая тема", message="Текст",
                           consent=True)
    sign_in_staff(client, make_user_fn, login, "oper_nvr", nvr.branch_id)
    page = page_text(client.get("/feedbackview/list/"))
    assert "Гостевая тема" not in page and "Пётр Гость" not in page


def test_the_inbox_loads_authors_with_the_rows(client, session, two_branches, make_user_fn,
                                               login):
    """The "author" column reads the user: no query per row."""
    krd, _ = two_branches
    for n in range(6):
        author = make_user_fn(f"author{n}", RESIDENT, kind="resident")
        session.add(m.Feedback(user_id=author.id, branch_id=krd.branch_id, topic=f"Т{n}",
                               message="Текст"))
    session.commit()
    sign_in_staff(client, make_user_fn, login, "oper_krd", krd.branch_id)
    statements = []
    engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        page = page_text(client.get("/feedbackview/list/"))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert "Тест Author5" in page
    # One user by id: the signed-in operator; the authors come joined to the rows.
    by_id = re.compile(r"WHERE ab_user\.id = (\?|%\(\w+\)s)")
    assert sum(bool(by_id.search(s)) for s in statements) <= 1
    assert any("FROM feedback LEFT OUTER JOIN ab_user" in s for s in statements)


# Contacts ------------------------------------------------------------------------------------


def test_contacts_page_lists_branches_from_the_database(client, session, two_branches):
    krd, nvr = two_branches
    branch = session.get(m.Branch, krd.branch_id)
    branch.address, branch.phone = "Краснодар, ул. Гимназическая, 55/1", "8 (861) 992-10-10"
    session.add(m.Branch(code="arm", name="Армавирэнергосбыт", city="Армавир",
                         address="Армавир, ул. Мира, 2", phone="8 (86137) 3-00-00"))
    session.commit()
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get("/contacts/")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    page = page_text(response)
    assert response.status_code == 200
    for text in ("8-800-600-02-20", "круглосуточно", "contact@nesk.ru",
                 "Краснодарэнергосбыт", "Краснодар, ул. Гимназическая, 55/1",
                 "8 (861) 992-10-10", "Новороссийскэнергосбыт", "Армавирэнергосбыт",
                 "Армавир, ул. Мира, 2", 'href="/feedback/"'):
        assert text in page, text
    assert page.index("Армавирэнергосбыт") < page.index("Краснодарэнергосбыт")
    assert sum("FROM branch" in s for s in statements) == 1
