"""Credentials issued by staff to organizations, and the printed cover letter."""
from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import func, select

from app.models import AuditEvent, Organization, PortalUser
from app.services.credentials import generate_password, issue_credentials
from app.services.letters import credentials_letter
from app.services.passwords import password_problems


def test_generated_passwords_are_strong_and_readable():
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 14
        assert not set(password) & set("0O1lI")
        assert password_problems(password) == []


def test_issued_credentials_sign_in_once_changed(app, client, session, two_branches):
    krd, nvr = two_branches
    org = session.get(Organization, krd.ids["Organization"])
    issued = issue_credentials(session, app.appbuilder.sm, org, "Сидоров Пётр",
                               None, issued_by=None)
    user = session.get(PortalUser, issued.user_id)
    assert issued.login == f"org{org.inn}-1"
    assert user.kind == "business" and user.must_change_password
    assert user.organization_id == org.id and user.branch_id == krd.branch_id
    assert user.email_is_placeholder and user.deliverable_email is None
    assert issued.password not in (user.password or "")
    stored = " ".join(str(r) for r in session.execute(select(AuditEvent.__table__)).all())
    assert issued.password not in stored
    r = client.post("/business/login", data={"login": issued.login,
                                             "password": issued.password,
                                             "branch": krd.branch_id})
    assert r.location.endswith("/auth/password")
    second = issue_credentials(session, app.appbuilder.sm, org, "", "boss@romashka.ru", None)
    assert second.login == f"org{org.inn}-2" and second.password != issued.password


def test_cover_letter_is_a_pdf_with_the_credentials_in_cyrillic():
    pdf = credentials_letter(
        supplier={"name": "АО «НЭСК» (демо)", "inn": "2308000000", "kpp": "230801001",
                  "phone": "8-800-600-02-20", "email": "contact@nesk.ru"},
        organization={"name": "ООО «Ромашка»", "inn": "2308123456",
                      "address": "Краснодар, ул. Красная, 1"},
        branch_name="Краснодарэнергосбыт", login="org2308123456-1",
        password="Kx7mPq9RtW2vZa", portal_url="https://lk.example/business/login",
    )
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for expected in ("Сопроводительное письмо", "ООО «Ромашка»", "Краснодарэнергосбыт",
                     "org2308123456-1", "Kx7mPq9RtW2vZa", "сменить пароль"):
        assert expected in text
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = [str(font.get_object()["/BaseFont"]) for font in fonts.values()]
    assert any("DejaVuSans" in name for name in names)
    embedded = [font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
                for font in fonts.values()]
    assert all("/FontFile2" in d.get_object() for d in embedded)


def _issue_page(client, org_id, **data):
    return client.post(f"/organizationview/credentials/{org_id}",
                       data={"full_name": "Сидоров Пётр", "email": "", **data})


def test_staff_issue_credentials_from_the_organization_card(app, client, session, login,
                                                            make_user_fn, two_branches):
    import base64
    import re

    krd, _nvr = two_branches
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    login("operator")
    card = client.get(f"/organizationview/show/{krd.ids['Organization']}")
    assert "Выдать логин и пароль" in card.get_data(as_text=True)
    page = _issue_page(client, krd.ids["Organization"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    login_name, password = re.findall(r'<code class="credential">([^<]+)</code>', html)
    user = session.execute(select(PortalUser).filter_by(username=login_name)).scalar_one()
    assert user.organization_id == krd.ids["Organization"] and user.must_change_password
    assert password not in user.password
    letter = base64.b64decode(re.search(r"data:application/pdf;base64,([^\"]+)", html)[1])
    text = " ".join(PdfReader(io.BytesIO(letter)).pages[0].extract_text().split())
    assert login_name in text and password in text and "Краснодарэнергосбыт" in text
    client.post("/logout/")
    signed_in = client.post("/business/login", data={"login": login_name, "password": password,
                                                     "branch": krd.branch_id})
    assert signed_in.location.endswith("/auth/password")


def test_credentials_form_refuses_bad_input_and_other_branches(app, client, session, login,
                                                               make_user_fn, two_branches):
    krd, nvr = two_branches
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    login("operator")
    count = session.execute(select(func.count(PortalUser.id))).scalar_one()
    bad = _issue_page(client, krd.ids["Organization"], full_name="", email="не-адрес")
    assert "Укажите ФИО представителя." in bad.get_data(as_text=True)
    assert "Неверный адрес электронной почты." in bad.get_data(as_text=True)
    assert client.get(f"/organizationview/credentials/{nvr.ids['Organization']}").status_code \
        == 404
    assert _issue_page(client, nvr.ids["Organization"]).status_code == 404
    assert session.execute(select(func.count(PortalUser.id))).scalar_one() == count


def test_finance_cannot_issue_credentials(app, client, session, login, make_user_fn,
                                          two_branches):
    krd, _nvr = two_branches
    make_user_fn("finance", "Finance")
    login("finance")
    card = client.get(f"/organizationview/show/{krd.ids['Organization']}")
    assert card.status_code == 200 and "Выдать логин и пароль" not in card.get_data(as_text=True)
    refused = _issue_page(client, krd.ids["Organization"])
    assert refused.status_code in (302, 403)
    assert session.execute(select(func.count(PortalUser.id)).where(
        PortalUser.organization_id == krd.ids["Organization"])).scalar_one() == 0
