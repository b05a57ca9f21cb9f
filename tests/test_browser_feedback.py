"""Feedback end to end in headless Chromium: a visitor finds the form from the contacts page
and writes without signing in; the branch operator answers from the inbox and the answer
reaches a real SMTP server; a resident writes from the cabinet and reads the answer there."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import models as m
from app.services import feedback
from app.services.binding import bind_accounts
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def live_overrides(smtp_server):
    controller, _inbox = smtp_server
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port,
            "MAIL_DEFAULT_SENDER": "noreply@nesk.example"}


def submit(page, selector="button[type=submit]"):
    with page.expect_navigation():
        page.locator(selector).first.click()


def sign_out(page):
    page.context.clear_cookies()


def test_visitor_writes_operator_answers_resident_reads(browser_page, session, two_branches,
                                                        make_user_fn, smtp_server, shots):
    krd, _ = two_branches
    _controller, inbox = smtp_server
    branch = session.get(m.Branch, krd.branch_id)
    branch.address, branch.phone = "Краснодар, ул. Гимназическая, 55/1", "8 (861) 992-10-10"
    session.commit()
    page = browser_page

    # A visitor: the contacts page, then the form (a mistake first).
    page.goto("/contacts/")
    assert "8-800-600-02-20" in page.content() and "Гимназическая" in page.content()
    shots(page, "60-contacts")
    page.get_by_role("link", name=re.compile("Написать обращение")).click()
    page.wait_for_url("**/feedback/")
    trap = page.locator("input[name=website]").bounding_box()  # the honeypot: off screen
    assert trap is None or trap["x"] + trap["width"] <= 0
    page.fill("input[name=name]", "Анна Смирнова")
    page.fill("input[name=email]", "anna@")
    page.select_option("select[name=branch]", str(krd.branch_id))
    page.fill("input[name=topic]", "Перерасчёт")
    page.fill("textarea[name=message]", "Прошу пересчитать начисления за ноябрь.")
    page.check("input[name=consent]")
    submit(page)
    assert feedback.EMAIL_BAD in page.content()
    shots(page, "61-feedback-public-refused")
    page.fill("input[name=email]", "anna@example.com")
    submit(page)
    assert "Спасибо! Обращение отправлено в филиал." in page.content()
    shots(page, "62-feedback-public-sent")
    row = session.execute(select(m.Feedback).where(
        m.Feedback.author_email == "anna@example.com")).scalar_one()

    # The branch operator answers from the inbox.
    make_user_fn("oper_krd", "Staff", branch_id=krd.branch_id)
    page.goto("/login/")
    page.fill("input[name=username]", "oper_krd")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "input[type=submit], button[type=submit]")
    page.goto("/feedbackview/list/")
    assert "Анна Смирнова" in page.content()
    shots(page, "63-feedback-staff-inbox")
    page.goto(f"/feedbackview/show/{row.id}")
    page.get_by_role("link", name=re.compile("Ответить")).first.click()
    page.wait_for_url(f"**/feedbackview/reply/{row.id}")
    page.fill("textarea[name=reply]", "Перерасчёт сделан, сумма в декабрьском счёте меньше.")
    shots(page, "64-feedback-staff-reply")
    submit(page)
    assert "Ответ сохранён и отправлен автору." in page.content()
    shots(page, "65-feedback-staff-answered")
    (recipients, letter), = inbox.messages
    assert recipients == ["anna@example.com"]
    assert "Перерасчёт сделан" in letter.get_body().get_content()
    sign_out(page)

    # A resident writes from the cabinet and reads the answer there.
    resident = make_user_fn("resident", "Resident", kind="resident", phone="+79185550011")
    bind_accounts(session, resident.id, [("230000000001", "SN-KRD-1")], None)
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550011")
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    page.get_by_role("link", name=re.compile("Обращения")).click()
    page.wait_for_url("**/cabinet/feedback/")
    page.fill("input[name=topic]", "Поверка счётчика")
    page.fill("textarea[name=message]", "Когда заканчивается срок поверки?")
    submit(page)
    assert "отправлено в Краснодарэнергосбыт" in page.content()
    mine = session.execute(select(m.Feedback).where(m.Feedback.user_id == resident.id)
                           ).scalar_one()
    oper = session.execute(select(m.PortalUser).where(m.PortalUser.username == "oper_krd")
                           ).scalar_one()
    feedback.reply(session, mine.id, "Поверка до 2031 года, ничего делать не нужно.",
                   staff_id=oper.id, scope=krd.branch_id)
    page.reload()
    assert "Поверка до 2031 года" in page.content() and "Отвечено" in page.content()
    shots(page, "66-feedback-cabinet-answered")
