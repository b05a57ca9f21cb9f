"""Applications for a supply contract: a resident applies with scans (checked by content, size
and number, all or nothing), sees only their own; the branch moves the status (new -> in
review -> approved / rejected with a reason), the applicant is told each time, and an approved
application gets a personal account bound to the applicant. Other branches see nothing."""
from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from flask import g
from sqlalchemy import func, select

from app import models as m
from app.services import applications as service
from app.views.access import RESIDENT, STAFF
from tests.factories import PASSWORD
from tests.signins import browser_sign_out

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
GARBAGE = b"MZ\x90\x00 this is not a scan"
CADASTRAL = "23:43:0123456:789"


class Outbox:
    """The dev outbox the test app writes notices to (DEV_OUTBOX_DIR)."""

    def __init__(self, folder):
        self.folder = folder

    def messages(self, to: str | None = None) -> list[dict]:
        if not self.folder.exists():
            return []
        found = [json.loads(p.read_text()) for p in sorted(self.folder.iterdir())]
        return [n for n in found if to is None or n["to"] == to]


@pytest.fixture
def outbox(app, tmp_path):
    return Outbox(tmp_path / "outbox")


@pytest.fixture
def uploads(app, tmp_path):
    folder = tmp_path / "uploads"
    app.config["APPLICATION_UPLOAD_DIR"] = str(folder)
    return folder


@pytest.fixture
def resident(make_user_fn, session, two_branches):
    user = make_user_fn("+79185550011", RESIDENT, kind="resident", phone="+79185550011")
    user.email = "resident@example.test"
    session.commit()
    return user


def as_user(client):
    """The test's app context is shared by every client: forget the cached signed-in user."""
    g.pop("_login_user", None)
    return client


@pytest.fixture
def signed_in(client, resident):
    response = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/cabinet/")
    return client


@pytest.fixture
def staff_client(app, make_user_fn, two_branches):
    """A factory of back-office clients: staff of the given branch."""

    def _staff(branch_id: int, username: str = "oper"):
        make_user_fn(username, STAFF, branch_id=branch_id)
        staff = app.test_client()
        response = as_user(staff).post("/login/", data={"username": username,
                                                        "password": PASSWORD})
        assert response.status_code == 302
        return staff

    return _staff


def form(branch_id: int, /, files=None, **overrides) -> dict:
    data = {"kind": "new_owner", "branch_id": str(branch_id),
            "applicant_name": "Сидоров Сидор Сидорович",
            "address": "г. Краснодар, ул. Северная, д. 10, кв. 5",
            "cadastral_number": CADASTRAL, "phone": "8 918 555-00-11",
            "email": "Sidorov@Example.ru", "comment": "Купил квартиру"}
    data.update(overrides)
    if files is None:
        files = [("passport.pdf", PDF), ("egrn.png", PNG)]
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return data


def submit(client, branch_id: int, /, files=None, **overrides):
    return as_user(client).post("/cabinet/applications/new",
                                data=form(branch_id, files, **overrides),
                                content_type="multipart/form-data")


def text(response) -> str:
    return response.get_data(as_text=True)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def stored_files(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


def nothing_saved(session, uploads, before: int) -> bool:
    return (count(session, m.ContractApplication) == before
            and count(session, m.ApplicationAttachment) == 0 and stored_files(uploads) == [])


def own_application(session, user_id: int) -> m.ContractApplication:
    session.expire_all()
    return session.scalars(select(m.ContractApplication)
                           .where(m.ContractApplication.user_id == user_id)).one()


# Applying ----------------------------------------------------------------------------------------


def test_resident_applies_with_scans(signed_in, session, uploads, resident, two_branches):
    krd, _ = two_branches
    page = as_user(signed_in).get("/cabinet/applications/new")
    assert page.status_code == 200
    body = text(page)
    assert 'enctype="multipart/form-data"' in body and 'type="file"' in body
    assert "Кадастровый номер" in body and "Краснодарэнергосбыт" in body

    response = submit(signed_in, krd.branch_id, files=[
        ("../../etc/passport.pdf", PDF), ("photo.png", PNG), ("scan", JPEG)])
    application = own_application(session, resident.id)
    assert response.status_code == 302
    assert response.location.endswith(f"/cabinet/applications/{application.id}")
    assert (application.status, application.kind, application.branch_id) == (
        "new", "new_owner", krd.branch_id)
    assert application.cadastral_number == CADASTRAL
    assert (application.phone, application.email) == ("+79185550011", "Sidorov@example.ru")
    files = application.attachments
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("passport.pdf", "application/pdf", len(PDF)), ("photo.png", "image/png", len(PNG)),
        ("scan", "image/jpeg", len(JPEG))]
    assert files[0].sha256 == hashlib.sha256(PDF).hexdigest()
    on_disk = stored_files(uploads)
    assert sorted(p.name for p in on_disk) == sorted(f.stored_name for f in files)
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in on_disk)
    assert (uploads / files[0].stored_name).read_bytes() == PDF

    listing = text(as_user(signed_in).get("/cabinet/applications/"))
    assert "Новая" in listing and "Смена собственника" in listing and "ул. Северная" in listing
    card = text(as_user(signed_in).get(f"/cabinet/applications/{application.id}"))
    assert "passport.pdf" in card and CADASTRAL in card and "Новая" in card
    download = as_user(signed_in).get(
        f"/cabinet/applications/{application.id}/files/{files[0].id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "passport.pdf" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_the_browser_content_type_is_not_trusted(signed_in, session, uploads, resident,
                                                two_branches):
    krd, _ = two_branches
    data = form(krd.branch_id, files=[])
    data["files"] = [(io.BytesIO(GARBAGE), "scan.pdf", "application/pdf")]
    response = as_user(signed_in).post("/cabinet/applications/new", data=data,
                                       content_type="multipart/form-data")
    assert "не является документом PDF" in text(response)
    assert nothing_saved(session, uploads, 2)
    data["files"] = [(io.BytesIO(PNG), "photo.png", "application/pdf")]
    as_user(signed_in).post("/cabinet/applications/new", data=data,
                            content_type="multipart/form-data")
    assert own_application(session, resident.id).attachments[0].content_type == "image/png"


@pytest.mark.parametrize("files, message", [
    ([("scan.pdf", GARBAGE)], "файл «scan.pdf» не является документом PDF или изображением"),
    ([("scan.pdf", PNG)], "Содержимое файла «scan.pdf» не соответствует его расширению: по "
                          "содержимому это PNG"),
    ([("photo.jpg", PDF)], "по содержимому это PDF"),
    ([("page.html", PDF)], "не соответствует его расширению"),
    ([("empty.pdf", b"")], "файл «empty.pdf» пустой"),
    ([("ok.pdf", PDF), ("bad.png", GARBAGE)], "файл «bad.png» не является"),
    ([(f"p{i}.pdf", PDF) for i in range(6)], "Можно приложить не более 5 файлов."),
    ([], "Приложите сканы документов"),
])
def test_bad_files_are_refused_and_nothing_is_saved(signed_in, session, uploads, two_branches,
                                                    files, message):
    krd, _ = two_branches
    response = submit(signed_in, krd.branch_id, files=files)
    assert response.status_code == 200
    assert message.lower() in text(response).lower()
    assert "Заявка не отправлена" in text(response)
    assert nothing_saved(session, uploads, 2)


def test_oversize_file_is_refused(app, signed_in, session, uploads, two_branches):
    krd, _ = two_branches
    assert app.config["APPLICATION_MAX_FILE_MB"] == 5
    app.config["APPLICATION_MAX_FILE_MB"] = 1
    big = PDF + bytes(service.MB - len(PDF) + 1)
    response = submit(signed_in, krd.branch_id, files=[("ok.png", PNG), ("big.pdf", big)])
    assert "Файл «big.pdf» больше 1 МБ." in text(response)
    assert nothing_saved(session, uploads, 2)
    exact = PDF + bytes(service.MB - len(PDF))
    assert submit(signed_in, krd.branch_id, files=[("big.pdf", exact)]).status_code == 302


def test_a_request_over_the_total_limit_gets_a_russian_413(app, signed_in, session, uploads,
                                                            two_branches):
    krd, _ = two_branches
    assert app.config["MAX_CONTENT_LENGTH"] == 30 * service.MB
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = submit(signed_in, krd.branch_id, files=[("big.pdf", PDF + bytes(8192))])
    assert response.status_code == 413
    assert "Файлы слишком большие" in text(response)
    assert nothing_saved(session, uploads, 2)


@pytest.mark.parametrize("field, value, message", [
    ("cadastral_number", "23:43:12345:789", "Кадастровый номер указывается цифрами"),
    ("cadastral_number", "23-43-0123456-789", "Кадастровый номер указывается цифрами"),
    ("cadastral_number", "23:43:0123456:", "Кадастровый номер указывается цифрами"),
    ("cadastral_number", "кадастр", "Кадастровый номер указывается цифрами"),
    ("cadastral_number", "٢٣:٤٣:٠١٢٣٤٥٦:٧٨٩", "Кадастровый номер указывается цифрами"),
    ("cadastral_number", "", "Укажите кадастровый номер"),
    ("address", "  ", "Укажите адрес объекта."),
    ("kind", "lottery", "Выберите вид заявки."),
    ("branch_id", "999999", "Выберите филиал"),
    ("branch_id", str(2**63), "Выберите филиал"),  # past any id column: no server error
    ("phone", "12345", "Телефон указан неверно"),
    ("email", "ivan@", "Адрес электронной почты указан неверно."),
])
def test_bad_fields_are_refused_and_nothing_is_saved(signed_in, session, uploads, two_branches,
                                                     field, value, message):
    krd, _ = two_branches
    response = submit(signed_in, krd.branch_id, **{field: value})
    assert message in text(response)
    assert nothing_saved(session, uploads, 2)


def test_a_contact_is_required(signed_in, session, uploads, two_branches):
    krd, _ = two_branches
    response = submit(signed_in, krd.branch_id, phone="", email="")
    assert "Укажите телефон или электронную почту" in text(response)
    assert nothing_saved(session, uploads, 2)


@pytest.mark.parametrize("number", ["23:43:0123456:789", "23:43:123456:1",
                                    " 23:43:0123456:12345 ", "01:02:0000001:7"])
def test_lenient_cadastral_numbers_are_accepted(signed_in, session, uploads, resident,
                                                two_branches, number):
    krd, _ = two_branches
    assert submit(signed_in, krd.branch_id, cadastral_number=number).status_code == 302
    assert own_application(session, resident.id).cadastral_number == number.strip()


def test_a_failure_while_saving_leaves_no_row_and_no_file(app, session, uploads, resident,
                                                          two_branches, monkeypatch):
    krd, _ = two_branches

    def broken_commit():
        raise RuntimeError("database went away")

    monkeypatch.setattr(session, "commit", broken_commit)
    with pytest.raises(RuntimeError):
        service.submit_application(
            session, resident, kind="new_owner", branch_id=krd.branch_id,
            applicant_name="Сидоров", address="ул. Мира, 1", cadastral_number=CADASTRAL,
            phone="+79185550011", files=[service.Upload("a.pdf", PDF),
                                         service.Upload("b.png", PNG)])
    monkeypatch.undo()
    assert nothing_saved(session, uploads, 2)


# Privacy -----------------------------------------------------------------------------------------


def test_another_users_application_and_files_are_not_found(app, signed_in, session, uploads,
                                                           make_user_fn, two_branches):
    krd, _ = two_branches
    submit(signed_in, krd.branch_id)
    mine = session.scalars(select(m.ContractApplication)
                           .where(m.ContractApplication.user_id.is_not(None))).one()
    stranger = make_user_fn("+79185550022", RESIDENT, kind="resident", phone="+79185550022")
    other = app.test_client()
    assert as_user(other).post("/auth/", data={"login": "9185550022",
                                               "password": PASSWORD}).status_code == 302
    file_id = mine.attachments[0].id
    for path in (f"/cabinet/applications/{mine.id}",
                 f"/cabinet/applications/{mine.id}/files/{file_id}"):
        assert as_user(other).get(path).status_code == 404, path
    assert "ул. Северная" not in text(as_user(other).get("/cabinet/applications/"))
    # the owner cannot reach a file through another application id either
    other_application = session.scalars(select(m.ContractApplication)
                                        .where(m.ContractApplication.user_id.is_(None))).first()
    assert as_user(signed_in).get(
        f"/cabinet/applications/{other_application.id}/files/{file_id}").status_code == 404
    assert stranger.id != mine.user_id


def test_anonymous_visitors_are_sent_to_the_resident_sign_in(client):
    response = client.get("/cabinet/applications/new")
    assert response.status_code == 302 and "/auth/" in response.location


def test_staff_of_another_branch_cannot_see_or_change_it(signed_in, session, uploads,
                                                        staff_client, two_branches):
    krd, nvr = two_branches
    submit(signed_in, krd.branch_id)
    application = session.scalars(select(m.ContractApplication)
                                  .where(m.ContractApplication.user_id.is_not(None))).one()
    file_id = application.attachments[0].id
    other = staff_client(nvr.branch_id, "nvr-oper")
    base = "/contractapplicationview"
    assert as_user(other).get(f"{base}/show/{application.id}").status_code == 404
    assert as_user(other).get(f"{base}/files/{application.id}/{file_id}").status_code == 404
    assert as_user(other).post(f"{base}/status/{application.id}",
                               data={"status": "in_review"}).status_code == 404
    assert as_user(other).get(f"{base}/account/{application.id}").status_code == 404
    assert "Сидоров Сидор" not in text(as_user(other).get(f"{base}/list/"))
    assert own_application(session, application.user_id).status == "new"
    with pytest.raises(service.NotFound):
        service.change_status(session, application.id, "in_review", actor_id=None,
                              branch_id=nvr.branch_id)

    own = staff_client(krd.branch_id, "krd-oper")
    card = as_user(own).get(f"{base}/show/{application.id}")
    assert card.status_code == 200
    assert "passport.pdf" in text(card) and "Взять на рассмотрение" in text(card)
    download = as_user(own).get(f"{base}/files/{application.id}/{file_id}")
    assert download.status_code == 200 and download.data == PDF


# Review ------------------------------------------------------------------------------------------


def flashes(client) -> list[str]:
    with client.session_transaction() as flask_session:
        return [message for _, message in flask_session.get("_flashes", [])]


def test_status_moves_only_along_the_allowed_path(signed_in, session, uploads, resident,
                                                 staff_client, outbox, two_branches):
    krd, _ = two_branches
    submit(signed_in, krd.branch_id)
    application = own_application(session, resident.id)
    staff = staff_client(krd.branch_id)
    status_url = f"/contractapplicationview/status/{application.id}"

    as_user(staff).post(status_url, data={"status": "approved"})
    assert own_application(session, resident.id).status == "new"
    assert any("нельзя перевести" in f for f in flashes(staff))
    assert outbox.messages() == []

    assert as_user(staff).post(status_url, data={"status": "in_review"}).status_code == 302
    assert own_application(session, resident.id).status == "in_review"
    notices = outbox.messages("resident@example.test")
    assert len(notices) == 1 and "на рассмотрении" in notices[0]["text"]
    assert f"№ {application.id}" in notices[0]["text"]
    assert len(outbox.messages("+79185550011")) == 1

    as_user(staff).post(status_url, data={"status": "rejected", "reason": "  "})
    assert own_application(session, resident.id).status == "in_review"
    assert any("Укажите причину отказа" in f for f in flashes(staff))

    reason = "Нет выписки из ЕГРН на объект"
    as_user(staff).post(status_url, data={"status": "rejected", "reason": reason})
    rejected = own_application(session, resident.id)
    assert (rejected.status, rejected.staff_comment) == ("rejected", reason)
    last = outbox.messages("resident@example.test")[-1]
    assert "отклонена" in last["text"] and reason in last["text"]

    as_user(staff).post(status_url, data={"status": "approved"})
    assert own_application(session, resident.id).status == "rejected"
    card = text(as_user(signed_in).get(f"/cabinet/applications/{application.id}"))
    assert "Отклонена" in card and reason in card
    actions = session.scalars(select(m.AuditEvent.action)
                              .where(m.AuditEvent.object_type == "application")).all()
    assert actions == ["application.submitted", "application.status", "application.status"]


def test_the_edit_form_cannot_bypass_the_review(signed_in, session, uploads, resident,
                                               staff_client, two_branches):
    krd, _ = two_branches
    submit(signed_in, krd.branch_id)
    application = own_application(session, resident.id)
    staff = staff_client(krd.branch_id)
    as_user(staff).post(f"/contractapplicationview/edit/{application.id}", data={
        "kind": "new_owner", "applicant_name": "Сидоров С. С.", "address": "ул. Мира, 1",
        "branch": krd.branch_id, "status": "approved"})
    edited = own_application(session, resident.id)
    assert edited.applicant_name == "Сидоров С. С." and edited.status == "new"
    assert as_user(staff).post(
        f"/contractapplicationview/delete/{application.id}").status_code in (302, 403)
    assert count(session, m.ContractApplication) == 3


def test_approval_opens_an_account_bound_to_the_applicant(signed_in, session, uploads, resident,
                                                          staff_client, outbox, two_branches):
    krd, _ = two_branches
    submit(signed_in, krd.branch_id)
    application = own_application(session, resident.id)
    staff = staff_client(krd.branch_id)
    base = "/contractapplicationview"
    assert as_user(staff).get(f"{base}/account/{application.id}").status_code == 302  # not yet
    for status in ("in_review", "approved"):
        as_user(staff).post(f"{base}/status/{application.id}", data={"status": status})
    assert "одобрена" in outbox.messages("resident@example.test")[-1]["text"]
    card = text(as_user(staff).get(f"{base}/show/{application.id}"))
    assert "Открыть лицевой счёт" in card

    page = as_user(staff).get(f"{base}/account/{application.id}")
    assert page.status_code == 200 and "231000000003" in text(page)  # the next free number
    fields = {"number": "230000000001", "holder_name": "Сидоров Сидор Сидорович",
              "tariff_group_id": str(krd.ids["TariffGroup"]), "locality_type": "urban",
              "locality": "Краснодар", "street": "ул. Северная", "house": "10", "flat": "5"}
    taken = as_user(staff).post(f"{base}/account/{application.id}", data=fields)
    assert taken.status_code == 200 and "уже существует" in text(taken)
    assert own_application(session, resident.id).account_id is None

    fields["number"] = "230000000003"
    response = as_user(staff).post(f"{base}/account/{application.id}", data=fields)
    assert response.status_code == 302
    opened = own_application(session, resident.id)
    account = opened.account
    assert account.number == "230000000003" and account.branch_id == krd.branch_id
    assert account.premises.address == "Краснодар, ул. Северная, д. 10, кв. 5"
    binding = session.scalars(select(m.AccountBinding)
                              .where(m.AccountBinding.account_id == account.id)).one()
    assert (binding.user_id, binding.method) == (resident.id, "staff")
    assert "230000000003" in outbox.messages("resident@example.test")[-1]["text"]

    cabinet = text(as_user(signed_in).get("/cabinet/"))
    assert "230000000003" in cabinet
    assert "230000000003" in text(as_user(signed_in).get(
        f"/cabinet/applications/{application.id}"))
    again = as_user(staff).post(f"{base}/account/{application.id}",
                                data={**fields, "number": "230000000004"})
    assert again.status_code == 302
    assert count(session, m.PersonalAccount) == 5  # the world's four and the one opened


def test_an_account_is_opened_only_for_an_approved_application(session, resident,
                                                               two_branches):
    krd, _ = two_branches
    application = session.get(m.ContractApplication, krd.ids["ContractApplication"])
    with pytest.raises(service.ApplicationError, match="только по одобренной заявке"):
        service.open_account_for(
            session, application.id, actor_id=None, number="230000000009",
            holder_name="Петров", tariff_group_id=krd.ids["TariffGroup"], locality="Краснодар",
            locality_type="urban", street="ул. Мира", house="1")
    assert count(session, m.PersonalAccount) == 4


# In a real browser ----------------------------------------------------------------------------


@pytest.fixture
def live_overrides(tmp_path):
    return {"APPLICATION_UPLOAD_DIR": str(tmp_path / "live-uploads")}


@pytest.mark.browser
def test_browser_resident_applies_and_staff_reviews(browser, browser_page, live_server, session,
                                                    resident, make_user_fn, two_branches,
                                                    tmp_path, shots):
    krd, _ = two_branches
    make_user_fn("operator", STAFF, branch_id=krd.branch_id)
    scan = tmp_path / "Выписка ЕГРН.pdf"
    scan.write_bytes(PDF)
    photo = tmp_path / "passport.png"
    photo.write_bytes(PNG)
    fake = tmp_path / "договор.pdf"
    fake.write_bytes(GARBAGE)
    page = browser_page

    page.goto("/auth/")
    page.fill("input[name=login]", "9185550011")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    page.goto("/cabinet/applications/")
    shots(page, "applications-01-empty-list")
    page.goto("/cabinet/applications/new")
    page.select_option("select[name=branch_id]", str(krd.branch_id))
    page.select_option("select[name=kind]", "new_owner")
    page.fill("input[name=address]", "г. Краснодар, ул. Северная, д. 10, кв. 5")
    page.fill("input[name=cadastral_number]", "23:43:01234:1")
    page.fill("input[name=email]", "sidorov@example.ru")
    assert page.locator(".file-picker-names").inner_text() == "Файлы не выбраны"
    page.get_by_text("Выбрать файлы").wait_for()
    page.set_input_files("input[name=files]", [str(scan), str(fake)])
    assert page.locator(".file-picker-names").inner_text() == \
        f"Выбрано: {scan.name}, {fake.name}", "the chosen files are named in Russian"
    shots(page, "applications-02-form")
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    assert "Кадастровый номер указывается цифрами" in page.content()
    assert "не является документом PDF" in page.content()
    shots(page, "applications-03-form-errors")

    page.fill("input[name=cadastral_number]", CADASTRAL)
    page.set_input_files("input[name=files]", [str(scan), str(photo)])
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    assert "/cabinet/applications/" in page.url and "отправлена" in page.content()
    shots(page, "applications-04-card")
    page.goto("/cabinet/applications/")
    assert "Новая" in page.content()
    shots(page, "applications-05-list")

    browser_sign_out(page)
    page.goto("/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("input[type=submit], button[type=submit]").first.click()
    application = own_application(session, resident.id)
    page.goto(f"/contractapplicationview/show/{application.id}")
    assert "Выписка ЕГРН.pdf" in page.content()
    with page.expect_navigation():
        page.get_by_role("button", name="Взять на рассмотрение").click()
    shots(page, "applications-06-staff-card")
    assert own_application(session, resident.id).status == "in_review"


def test_hook_application_status_changed_after_commit(app, signed_in, session, uploads,
                                                      two_branches):
    """Every move of an application fires application_status_changed with plain values, after
    the move is committed; a refused move fires nothing."""
    from app.extensions import db
    from app.plugins import hookimpl

    krd, _ = two_branches
    submit(signed_in, krd.branch_id)
    application = session.scalars(select(m.ContractApplication)
                                  .where(m.ContractApplication.user_id.is_not(None))).one()
    seen = []

    class Listener:
        @hookimpl
        def application_status_changed(self, event):
            row = db.session.get(m.ContractApplication, event["application_id"])
            # committed: the session holds no change of it that is not yet written
            status = row.status if not (db.session.dirty or db.session.new) else None
            seen.append((event, status))

    pm = app.extensions["plugins"]
    pm.register(Listener(), name="test-application-listener")
    try:
        service.change_status(session, application.id, "in_review", actor_id=None)
        with pytest.raises(service.ApplicationError):
            service.change_status(session, application.id, "new", actor_id=None)
        service.change_status(session, application.id, "rejected", actor_id=None,
                              reason="Нет документа о собственности")
    finally:
        pm.unregister(name="test-application-listener")
    assert [(e["previous"], e["status"], stored) for e, stored in seen] == [
        ("new", "in_review", "in_review"), ("in_review", "rejected", "rejected")]
    assert all(e["application_id"] == application.id and e["user_id"] == application.user_id
               and e["kind"] == application.kind for e, _ in seen)
