"""Applications for a supply contract (заявки на заключение договора).

A signed-in resident applies, with or without a personal account yet: the kind of request,
the address and cadastral number of the premises, a contact and scans of the documents (an
application for a meter's verification or replacement concerns premises the supplier already
knows, so it needs neither the cadastral number nor scans). The branch reviews it: new -> in
review -> approved or rejected (with a reason); the applicant is told of every change. On
approval staff open the personal account and bind it to the applicant.

Scans are checked by their first bytes, never by the name or the browser's content type, and
stored on disk under a random name; the database keeps what the portal detected. Submission is
all or nothing: on any error no row and no file remain.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.models import (
    AccountBinding,
    ApplicationAttachment,
    ApplicationKind,
    ApplicationStatus,
    Branch,
    ContractApplication,
    LocalityType,
    Meter,
    PersonalAccount,
    PortalUser,
    Premises,
    TariffGroup,
)
from app.services import audit, dispatch, verification
from app.services.accounts import resident_account_ids
from app.services.ids import get_row
from app.services.notify import contacts_of, send_notice
from app.services.phones import normalize_phone

MAX_FILES = 5
MB = 1024 * 1024
#: ASCII digits only: Python's \d also takes other scripts' digits (٣, ３), which would be
#: stored as such and match no register.
CADASTRAL_NUMBER = re.compile(r"^\d{2}:\d{2}:\d{6,7}:\d+$", re.ASCII)
ACCOUNT_NUMBER = re.compile(r"^\d{10,13}$", re.ASCII)
#: Accepted scans: (first bytes, content type, what the applicant reads, file extensions).
SIGNATURES = (
    (b"%PDF-", "application/pdf", "PDF", (".pdf",)),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG", (".jpg", ".jpeg", ".jpe")),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG", (".png",)),
)
#: Allowed status changes; a rejection needs a reason.
TRANSITIONS = {"new": ("in_review",), "in_review": ("approved", "rejected")}
#: Kinds about premises the supplier already serves: no cadastral number or scans required.
WITHOUT_DOCUMENTS = frozenset({verification.APPLICATION_KIND})
NOTICE_SUBJECT = "Заявка на договор энергоснабжения"


class ApplicationError(Exception):
    """Refused input: ``errors`` maps a form field to a message safe to show."""

    def __init__(self, errors: dict[str, str] | str):
        self.errors = {"": errors} if isinstance(errors, str) else dict(errors)
        super().__init__(" ".join(self.errors.values()))


class NotFound(ApplicationError):
    """No such application within the caller's reach (another user's, another branch's)."""

    def __init__(self):
        super().__init__("Заявка не найдена.")


@dataclass(frozen=True)
class Upload:
    """A file as received: the name the client gave (shown only) and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class _Checked:
    filename: str
    content_type: str
    data: bytes


# Settings ---------------------------------------------------------------------------------------


def max_file_bytes() -> int:
    return int(current_app.config.get("APPLICATION_MAX_FILE_MB", 5)) * MB


def upload_dir() -> Path:
    """Where scans are kept: APPLICATION_UPLOAD_DIR, else instance/uploads."""
    configured = current_app.config.get("APPLICATION_UPLOAD_DIR")
    return Path(configured or Path(current_app.instance_path) / "uploads")


def attachment_path(attachment: ApplicationAttachment) -> Path:
    return upload_dir() / attachment.stored_name


# Checks -----------------------------------------------------------------------------------------


def detect_type(data: bytes) -> str | None:
    """The content type by the file's first bytes, or None when it is not an accepted scan."""
    for magic, content_type, _name, _extensions in SIGNATURES:
        if data.startswith(magic):
            return content_type
    return None


def name_disagrees(filename: str, content_type: str) -> bool:
    """Whether the name's extension claims another type than the content (a PNG named
    scan.pdf), so that what staff open is what its name says; no extension is fine."""
    suffix = re.search(r"\.[A-Za-z0-9]{1,5}$", filename)
    if suffix is None:
        return False
    extensions = next(e for _m, detected, _n, e in SIGNATURES if detected == content_type)
    return suffix.group().lower() not in extensions


def _type_name(content_type: str) -> str:
    return next(name for _m, detected, name, _e in SIGNATURES if detected == content_type)


def clean_filename(raw: str | None) -> str:
    """The client's file name for display only: no folders, no control characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[-120:] or "файл"


def clean_cadastral_number(raw: str | None) -> str:
    return "".join((raw or "").split())


def _check_contacts(phone: str | None, email: str | None, errors: dict) -> tuple:
    clean_phone = clean_email = None
    if phone and phone.strip():
        clean_phone = normalize_phone(phone)
        if clean_phone is None:
            errors["phone"] = "Телефон указан неверно: например, +7 918 123-45-67."
    if email and email.strip():
        try:
            clean_email = validate_email(email.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = "Адрес электронной почты указан неверно."
    if not (phone and phone.strip()) and not (email and email.strip()):
        errors["phone"] = "Укажите телефон или электронную почту для связи."
    return clean_phone, clean_email


def _check_files(files: list[Upload], errors: dict, required: bool = True) -> list[_Checked]:
    files = [f for f in files if f.filename or f.data]
    limit = max_file_bytes()
    if not files and not required:
        return []
    if not files:
        errors["files"] = ("Приложите сканы документов: паспорт и документ о праве на объект "
                           "(PDF, JPEG или PNG).")
        return []
    if len(files) > MAX_FILES:
        errors["files"] = f"Можно приложить не более {MAX_FILES} файлов."
        return []
    checked, problems = [], []
    for upload in files:
        name = clean_filename(upload.filename)
        content_type = detect_type(upload.data)
        if not upload.data:
            problems.append(f"файл «{name}» пустой")
        elif len(upload.data) > limit:
            problems.append(f"файл «{name}» больше {limit // MB} МБ")
        elif content_type is None:
            problems.append(f"файл «{name}» не является документом PDF или изображением "
                            "JPEG или PNG")
        elif name_disagrees(name, content_type):
            problems.append(f"содержимое файла «{name}» не соответствует его расширению: "
                            f"по содержимому это {_type_name(content_type)}")
        else:
            checked.append(_Checked(name, content_type, upload.data))
    if problems:
        message = "; ".join(problems)
        errors["files"] = message[0].upper() + message[1:] + "."
    return checked


# The applicant ----------------------------------------------------------------------------------


def submit_application(session: Session, user: PortalUser, *, kind: str, branch_id, address: str,
                       cadastral_number: str, applicant_name: str, phone: str | None = None,
                       email: str | None = None, comment: str | None = None,
                       files: list[Upload] = (), ip: str | None = None) -> ContractApplication:
    """Check everything, then save the application and its scans together, or nothing."""
    errors: dict[str, str] = {}
    if kind not in ApplicationKind.labels:
        errors["kind"] = "Выберите вид заявки."
    branch = get_row(session, Branch, branch_id)
    if branch is None:
        errors["branch_id"] = "Выберите филиал, который обслуживает адрес."
    applicant_name = " ".join((applicant_name or "").split())
    if not applicant_name:
        errors["applicant_name"] = "Укажите фамилию, имя и отчество заявителя."
    elif len(applicant_name) > 160:
        errors["applicant_name"] = "ФИО — не длиннее 160 символов."
    address = " ".join((address or "").split())
    if not address:
        errors["address"] = "Укажите адрес объекта."
    elif len(address) > 255:
        errors["address"] = "Адрес — не длиннее 255 символов."
    documents = kind not in WITHOUT_DOCUMENTS
    cadastral = clean_cadastral_number(cadastral_number)
    if not cadastral and documents:
        errors["cadastral_number"] = "Укажите кадастровый номер объекта."
    elif not cadastral:
        cadastral = None
    elif len(cadastral) > 40 or not CADASTRAL_NUMBER.match(cadastral):
        errors["cadastral_number"] = ("Кадастровый номер указывается цифрами через двоеточие, "
                                      "например 23:43:0123456:789.")
    clean_phone, clean_email = _check_contacts(phone, email, errors)
    comment = (comment or "").strip() or None
    if comment and len(comment) > 2000:
        errors["comment"] = "Комментарий — не длиннее 2000 символов."
    checked = _check_files(list(files), errors, required=documents)
    if errors:
        raise ApplicationError(errors)

    application = ContractApplication(
        user_id=user.id, branch_id=branch.id, kind=kind, applicant_name=applicant_name,
        address=address, cadastral_number=cadastral, phone=clean_phone, email=clean_email,
        comment=comment, status="new")
    folder = upload_dir()
    written: list[Path] = []
    try:
        session.add(application)
        session.flush()
        folder.mkdir(parents=True, exist_ok=True)
        for scan in checked:
            stored_name = secrets.token_hex(16)
            path = folder / stored_name
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written.append(path)
            with os.fdopen(descriptor, "wb") as out:
                out.write(scan.data)
            session.add(ApplicationAttachment(
                application_id=application.id, filename=scan.filename,
                content_type=scan.content_type, size=len(scan.data),
                sha256=hashlib.sha256(scan.data).hexdigest(), stored_name=stored_name))
        session.commit()
    except BaseException:
        session.rollback()
        for path in written:
            path.unlink(missing_ok=True)
        raise
    audit.record(session, "application.submitted", actor_id=user.id,
                 object_type="application", object_id=application.id, ip=ip,
                 details={"kind": kind, "files": len(checked)})
    return application


def prefill(session: Session, user_id: int, args: Mapping[str, str],
            today: dt.date) -> dict[str, str]:
    """The form's values a link chooses (the warning of a meter's verification): ``kind``, and
    for ``meter``, one of the user's own, its account's branch and address and a comment that
    names it. A value that is not one of these is ignored; another user's meter shows nothing."""
    values: dict[str, str] = {}
    if args.get("kind") in ApplicationKind.labels:
        values["kind"] = args["kind"]
    meter_id = (args.get("meter") or "").strip()
    if not (meter_id.isascii() and meter_id.isdigit() and len(meter_id) <= 18):
        return values
    row = session.execute(
        select(Meter, PersonalAccount, Premises)
        .join(PersonalAccount, PersonalAccount.id == Meter.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .where(Meter.id == int(meter_id),
               PersonalAccount.id.in_(resident_account_ids(user_id)))).first()
    if row is None:
        return values
    meter, account, premises = row
    due, when = meter.verification_due, ""
    if verification.overdue(due, today):
        when = f", срок поверки истёк {due:%d.%m.%Y}"
    elif due is not None:
        when = f", срок поверки — до {due:%d.%m.%Y}"
    values.update(branch_id=str(account.branch_id), address=premises.address, comment=(
        f"Прошу провести поверку или заменить счётчик № {meter.serial} (лицевой счёт "
        f"{account.number}{when})."))
    return values


def list_for_user(session: Session, user_id: int) -> list[ContractApplication]:
    return list(session.scalars(
        select(ContractApplication).where(ContractApplication.user_id == user_id)
        .options(selectinload(ContractApplication.attachments))
        .order_by(ContractApplication.created_at.desc(), ContractApplication.id.desc())))


def get_for_user(session: Session, user_id: int, application_id: int) -> ContractApplication:
    """The user's own application; another user's looks the same as a missing one."""
    application = session.get(ContractApplication, application_id)
    if application is None or application.user_id != user_id:
        raise NotFound()
    return application


def attachment_for_user(session: Session, user_id: int, application_id: int,
                        file_id: int) -> ApplicationAttachment:
    application = get_for_user(session, user_id, application_id)
    return attachment_of(application, file_id)


def attachment_of(application: ContractApplication, file_id: int) -> ApplicationAttachment:
    for attachment in application.attachments:
        if attachment.id == file_id:
            return attachment
    raise NotFound()


# Staff ------------------------------------------------------------------------------------------


def _scoped(session: Session, application_id: int, branch_id: int | None) -> ContractApplication:
    """The application, if it lies in ``branch_id`` (None: any branch)."""
    application = session.get(ContractApplication, application_id)
    if application is None or (branch_id is not None and application.branch_id != branch_id):
        raise NotFound()
    return application


def allowed_transitions(application: ContractApplication) -> tuple[str, ...]:
    return TRANSITIONS.get(application.status, ())


def change_status(session: Session, application_id: int, status: str, *, actor_id: int | None,
                  reason: str | None = None, ip: str | None = None,
                  branch_id: int | None = None) -> ContractApplication:
    """Move an application along new -> in_review -> approved/rejected and tell the applicant.
    ``branch_id`` limits a branch operator to their branch."""
    application = _scoped(session, application_id, branch_id)
    if status not in allowed_transitions(application):
        raise ApplicationError({"status": (
            f"Заявку в статусе «{ApplicationStatus.label(application.status)}» нельзя перевести "
            f"в статус «{ApplicationStatus.label(status)}».")})
    reason = (reason or "").strip()
    if status == "rejected" and not reason:
        raise ApplicationError({"reason": "Укажите причину отказа: её получит заявитель."})
    if len(reason) > 2000:
        raise ApplicationError({"reason": "Причина — не длиннее 2000 символов."})
    previous = application.status
    application.status = status
    if reason:
        application.staff_comment = reason
    session.commit()
    audit.record(session, "application.status", actor_id=actor_id, object_type="application",
                 object_id=application.id, ip=ip, details={"from": previous, "to": status})
    dispatch.fire("application_status_changed", event={
        "application_id": application.id, "kind": application.kind,
        "user_id": application.user_id, "previous": previous, "status": status})
    return application


def status_text(application: ContractApplication) -> str:
    text = (f"Заявка № {application.id} на заключение договора энергоснабжения: "
            f"{ApplicationStatus.label(application.status).lower()}.")
    if application.status == "rejected":
        text += f" Причина: {application.staff_comment}"
    elif application.status == "approved":
        text += " Сотрудник филиала свяжется с вами для подписания договора."
    return text


def notify_applicant(application: ContractApplication, text: str) -> int:
    """Tell the applicant on their verified contacts (those of the portal user); an
    application without a user gets it on the contacts it gives. Returns notices sent."""
    if application.user is not None:
        targets = contacts_of(application.user)
    else:
        targets = [(kind, address) for kind, address in (("email", application.email),
                                                         ("sms", application.phone)) if address]
    return sum(send_notice(kind, address, NOTICE_SUBJECT, text) for kind, address in targets)


def suggest_account_number(session: Session) -> str:
    """The next free 12-digit number after the largest one, for the staff form."""
    numbers = session.scalars(select(PersonalAccount.number)).all()
    largest = max((int(n) for n in numbers if n.isdigit() and len(n) == 12),
                  default=229999999999)
    return str(largest + 1)


def open_account_for(session: Session, application_id: int, *, actor_id: int | None,
                     number: str, holder_name: str, tariff_group_id, locality: str,
                     locality_type: str, street: str, house: str, flat: str | None = None,
                     ip: str | None = None, branch_id: int | None = None) -> PersonalAccount:
    """Open the personal account of an approved application in its branch and bind it to the
    applicant's cabinet."""
    application = _scoped(session, application_id, branch_id)
    if application.status != "approved":
        raise ApplicationError("Лицевой счёт открывается только по одобренной заявке.")
    if application.account_id is not None:
        raise ApplicationError(
            f"По заявке уже открыт лицевой счёт {application.account.number}.")
    errors: dict[str, str] = {}
    number = "".join((number or "").split())
    if not ACCOUNT_NUMBER.match(number):
        errors["number"] = "Номер лицевого счёта — от 10 до 13 цифр."
    elif session.scalar(select(PersonalAccount.id).where(PersonalAccount.number == number)):
        errors["number"] = f"Лицевой счёт {number} уже существует."
    holder_name = " ".join((holder_name or "").split())
    if not holder_name or len(holder_name) > 160:
        errors["holder_name"] = "Укажите владельца лицевого счёта (до 160 символов)."
    group = get_row(session, TariffGroup, tariff_group_id)
    if group is None:
        errors["tariff_group_id"] = "Выберите тарифную группу."
    if locality_type not in LocalityType.labels:
        errors["locality_type"] = "Выберите тип населённого пункта."
    fields = {"locality": (locality, 120, "населённый пункт"), "street": (street, 160, "улицу"),
              "house": (house, 16, "номер дома")}
    clean = {}
    for name, (value, size, what) in fields.items():
        clean[name] = " ".join((value or "").split())
        if not clean[name] or len(clean[name]) > size:
            errors[name] = f"Укажите {what} (до {size} символов)."
    flat = " ".join((flat or "").split()) or None
    if flat and len(flat) > 16:
        errors["flat"] = "Номер квартиры — до 16 символов."
    if errors:
        raise ApplicationError(errors)

    premises = Premises(branch_id=application.branch_id, locality_type=locality_type,
                        flat=flat, **clean)
    session.add(premises)
    try:
        session.flush()
        account = PersonalAccount(
            number=number, holder_name=holder_name, premises_id=premises.id,
            branch_id=application.branch_id, tariff_group_id=group.id, status="active",
            opened_on=dt.date.today())
        session.add(account)
        session.flush()
        if application.user_id is not None:
            session.add(AccountBinding(user_id=application.user_id, account_id=account.id,
                                       method="staff"))
        application.account_id = account.id
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApplicationError({"number": f"Лицевой счёт {number} уже существует."}) from None
    audit.record(session, "application.account_opened", actor_id=actor_id,
                 object_type="application", object_id=application.id, ip=ip,
                 details={"account": number})
    if application.user_id is not None:
        audit.record(session, "account.bound", actor_id=actor_id, object_type="account",
                     object_id=account.id, ip=ip, details={"user_id": application.user_id})
    text = f"По заявке № {application.id} открыт лицевой счёт {number}."
    if application.user_id is not None:
        text += " Он уже привязан к вашему личному кабинету."
    notify_applicant(application, text)
    return account
