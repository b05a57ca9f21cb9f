"""Credentials issued by staff to organizations, and the printed cover letter."""
from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import select

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
