"""Push notices (Web Push): the transport encrypts each notice for the device (RFC 8291,
aes128gcm) and signs it with the portal's VAPID key (RFC 8292), checked by a push service of
our own on a loopback port that decrypts with the key pair a browser would have made; a 404
or 410 removes the device, other failures keep it; the notices reach the devices of those who
chose push for the topic; the endpoints need the CSRF token, act on one's own devices only and
re-bind a shared device; the profile and the organization's page list and switch off devices.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import g
from sqlalchemy import func, select

import config as config_module
from app import models as m
from app.production import problems
from app.services import acts, devices, notice_events, push, vapid
from tests.factories import PASSWORD

OCTOBER = dt.date(2026, 10, 1)
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36")
#: push.js, under its fingerprinted name, loaded with the page's CSP nonce.
PUSH_SCRIPT = re.compile(r'<script src="/static/js/push(\.\w+)?\.js" nonce="[^"]+"')
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")


# ---------------------------------------------------------------------------------------------
# A push service on a loopback port, and a browser's subscription to it


class PushService:
    """Records every notice posted to it; answers each path with the status set for it."""

    def __init__(self):
        self.received: list[dict] = []
        self.status: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.received.append({"path": self.path, "headers": headers, "body": body})
                self.send_response(service.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        # shutdown() waits up to one poll: 0.05 s, not the default half second per test.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def to(self, device: Device) -> list[dict]:
        return [r for r in self.received if r["path"] == device.path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    running = PushService()
    yield running
    running.close()


class Device:
    """A browser's side: its own P-256 key pair and auth secret, as PushManager makes them."""

    def __init__(self, service: PushService, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.path = f"/push/{name}-{os.urandom(6).hex()}"
        self.endpoint = service.origin + self.path
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        self.json = {"endpoint": self.endpoint, "expirationTime": None,
                     "keys": {"p256dh": vapid.b64url_encode(point),
                              "auth": vapid.b64url_encode(self.auth)}}

    def read(self, request: dict) -> dict:
        """Decrypt a notice as the browser does."""
        assert request["headers"]["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(request["body"], private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")
        return json.loads(plain)


def check_vapid(request: dict, audience: str, public_key: str, subject: str) -> dict:
    """The Authorization header is ``vapid t=<JWT>,k=<key>`` (RFC 8292): the key is the
    portal's, the JWT is signed with it (ES256) and claims the push service's origin, a
    near expiry and the portal's contact. Returns the claims."""
    scheme, _, params = request["headers"]["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == public_key
    header, claims, signature = parts["t"].split(".")
    assert json.loads(vapid.b64url_decode(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = vapid.b64url_decode(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                       vapid.b64url_decode(parts["k"]))
    key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                    int.from_bytes(raw[32:], "big")),
               f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    data = json.loads(vapid.b64url_decode(claims))
    assert data["aud"] == audience and data["sub"] == subject
    assert time.time() < data["exp"] <= time.time() + 24 * 3600
    return data


def resident(make_user_fn, name: str, **columns):
    user = make_user_fn(name, "Resident", kind="resident")
    for column, value in columns.items():
        setattr(user, column, value)
    return user


def subscribed(session, user, device: Device, agent: str = CHROME_ANDROID):
    return push.subscribe(session, user.id, device.json, agent)


def devices_of(session, user) -> list[m.PushSubscription]:
    session.expire_all()
    return push.devices(session, user.id)


# ---------------------------------------------------------------------------------------------
# The transport


def test_a_notice_is_encrypted_for_the_device_and_signed_with_vapid(app, session, service,
                                                                      make_user_fn):
    user = resident(make_user_fn, "pushed")
    phone, laptop = Device(service, "phone"), Device(service, "laptop")
    subscribed(session, user, phone)
    subscribed(session, user, laptop, SAFARI_IPHONE)
    content = push.PushContent("Новый счёт", "Счёт за октябрь 2026 г.: к оплате 735,00 руб.",
                               "/cabinet/bills/1")

    assert push.send(session, [(user.id, content)]) == {0}
    session.commit()

    for device in (phone, laptop):
        request, = service.to(device)
        assert device.read(request) == {"title": "Новый счёт", "url": "/cabinet/bills/1",
                                        "body": "Счёт за октябрь 2026 г.: к оплате 735,00 руб."}
        check_vapid(request, service.origin, push.public_key(),
                    f"mailto:{app.config['SUPPLIER_EMAIL']}")
        assert int(request["headers"]["ttl"]) == push.TTL
    # Each device's notice is sealed with that device's keys: another cannot read it.
    with pytest.raises(http_ece.ECEException, match="InvalidTag"):
        laptop.read(service.to(phone)[0])
    assert all(d.last_used_at is not None for d in devices_of(session, user))


def test_a_forged_signature_would_be_caught(app, session, service, make_user_fn):
    """The check above is a real one: the same JWT does not pass for another key."""
    user = resident(make_user_fn, "forged")
    device = Device(service, "phone")
    subscribed(session, user, device)
    push.send(session, [(user.id, push.PushContent("Т", "Т", "/"))])
    request, = service.to(device)
    subject = f"mailto:{app.config['SUPPLIER_EMAIL']}"
    check_vapid(request, service.origin, push.public_key(), subject)
    other = vapid.generate()[1]
    header = request["headers"]["authorization"].replace(push.public_key(), other)
    forged = {**request, "headers": {**request["headers"], "authorization": header}}
    with pytest.raises(InvalidSignature):
        check_vapid(forged, service.origin, other, subject)


@pytest.mark.parametrize("status, kept", [(410, False), (404, False), (500, True), (429, True)])
def test_the_push_services_answer_decides_whether_the_device_stays(
        session, service, make_user_fn, status, kept):
    user = resident(make_user_fn, "answered")
    gone, fine = Device(service, "gone"), Device(service, "fine")
    subscribed(session, user, gone)
    subscribed(session, user, fine)
    service.status[gone.path] = status

    assert push.send(session, [(user.id, push.PushContent("Т", "Т", "/"))]) == {0}
    session.commit()
    left = {d.endpoint for d in devices_of(session, user)}
    assert (gone.endpoint in left) is kept and fine.endpoint in left
    assert len(service.to(gone)) == 1  # tried once: no retry storm on a dead device

    # With only the failing device, the user is not reached, and the notice may be retried.
    service.status[fine.path] = 500
    assert push.send(session, [(user.id, push.PushContent("Т", "Т", "/"))]) == set()


def test_no_endpoint_or_key_reaches_the_log(session, service, make_user_fn, caplog):
    user = resident(make_user_fn, "quiet")
    device = Device(service, "secret")
    subscribed(session, user, device)
    service.close()  # nobody listening: a connection error, whose text holds the URL
    with caplog.at_level("INFO"):
        push.send(session, [(user.id, push.PushContent("Т", "Т", "/"))])
    assert caplog.records, "the failure is logged"
    text = caplog.text
    assert device.path.split("/")[-1] not in text
    assert device.json["keys"]["p256dh"] not in text and device.json["keys"]["auth"] not in text


# ---------------------------------------------------------------------------------------------
# Notices by topic


@pytest.fixture
def people(session, two_branches, make_user_fn):
    """Two residents bound to Krasnodar's account: one chose push for bills, the other did not;
    each has a device."""
    krd, _ = two_branches
    chose = resident(make_user_fn, "chose", notify_bills_push=True, notify_bills_email=False,
                     notify_bills_sms=False)
    declined = resident(make_user_fn, "declined")
    for user in (chose, declined):
        session.add(m.AccountBinding(user_id=user.id, account_id=krd.ids["PersonalAccount"]))
    session.commit()
    return krd, chose, declined


def test_a_bill_ready_notice_reaches_the_devices_of_those_who_chose_push(
        session, service, people):
    krd, chose, declined = people
    mine, theirs = Device(service, "chose"), Device(service, "declined")
    subscribed(session, chose, mine)
    subscribed(session, declined, theirs)

    assert notice_events.bill_ready(session, OCTOBER) == 2  # push for one, e-mail for the other
    request, = service.to(mine)
    account = session.get(m.PersonalAccount, krd.ids["PersonalAccount"])
    assert mine.read(request) == {
        "title": "Новый счёт",
        "body": f"Счёт за октябрь 2026 г. по л/с {account.number}: к оплате 735,00 руб. "
                "до 10.11.2026.",
        "url": f"/cabinet/bills/{account.id}"}
    assert service.to(theirs) == []
    channels = dict(session.execute(select(m.NoticeLog.user_id, m.NoticeLog.channels)
                                    .where(m.NoticeLog.code == "bill_ready")).all())
    assert channels == {chose.id: "push", declined.id: "email"}  # test users have no phone

    assert notice_events.bill_ready(session, OCTOBER) == 0  # nobody is told twice
    assert len(service.to(mine)) == 1


def test_two_bills_of_one_person_are_two_notices_on_the_device(session, service, people,
                                                               two_branches):
    _, chose, _ = people
    _, nvr = two_branches
    session.add(m.AccountBinding(user_id=chose.id, account_id=nvr.ids["PersonalAccount"]))
    session.commit()
    device = Device(service, "two")
    subscribed(session, chose, device)
    notice_events.bill_ready(session, OCTOBER)
    numbers = session.scalars(select(m.PersonalAccount.number).where(m.PersonalAccount.id.in_(
        select(m.AccountBinding.account_id).where(m.AccountBinding.user_id == chose.id)))).all()
    assert len(numbers) == 2
    bodies = sorted(device.read(r)["body"] for r in service.to(device))
    assert len(bodies) == 2 and all(any(n in b for b in bodies) for n in numbers)
    assert session.scalars(select(m.NoticeLog.channels).where(
        m.NoticeLog.user_id == chose.id)).all() == ["push", "push"]


def test_push_chosen_without_a_device_reaches_nobody_and_is_retried(session, service, people):
    _, chose, declined = people
    declined.notify_bills_email = declined.notify_bills_sms = False
    session.commit()
    assert notice_events.bill_ready(session, OCTOBER) == 0  # no device: nobody to tell
    assert session.scalar(select(func.count(m.NoticeLog.id))) == 0
    device = Device(service, "later")
    subscribed(session, chose, device)
    assert notice_events.bill_ready(session, OCTOBER) == 1  # the device came: told now
    assert len(service.to(device)) == 1


def test_payment_and_reading_window_notices_go_to_devices_too(session, service, people):
    krd, chose, _ = people
    chose.notify_payments_push = chose.notify_readings_push = True
    chose.notify_payments_email = chose.notify_payments_sms = False
    session.commit()
    device = Device(service, "all")
    subscribed(session, chose, device)
    session.execute(m.Reading.__table__.delete())
    session.commit()

    assert notice_events.payment_received(session, [krd.ids["Payment"]]) >= 1
    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 16)) >= 1
    told = [device.read(r) for r in service.to(device)]
    assert [t["title"] for t in told] == ["Платёж получен", "Начался приём показаний"]
    assert "зачислен" in told[0]["body"] and told[0]["url"] == "/cabinet/payments/"
    assert told[1]["body"].startswith("С 15 ноября по 25 ноября передайте показания")


def test_an_organization_learns_of_a_ready_act_on_its_devices(session, service, two_branches,
                                                             make_user_fn):
    krd, _ = two_branches
    requester = make_user_fn("org-krd", "Business", kind="business",
                             organization_id=krd.ids["Organization"])
    colleague = make_user_fn("org-krd-2", "Business", kind="business",
                             organization_id=krd.ids["Organization"])
    mine, theirs = Device(service, "org"), Device(service, "colleague")
    subscribed(session, requester, mine)
    subscribed(session, colleague, theirs)
    act = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    act.requested_by_id = requester.id
    session.commit()

    acts.decide(session, act, None, "ready")
    request, = service.to(mine)
    assert mine.read(request) == {
        "title": "Акт сверки сформирован",
        "body": "Акт сверки по договору № Д-krd-1 за период с 01.01.2026 по 30.09.2026 готов.",
        "url": "/business/acts/"}
    assert service.to(theirs) == []
    assert session.scalar(select(m.NoticeLog.channels).where(
        m.NoticeLog.code == "act_ready")) == "email,push"


# ---------------------------------------------------------------------------------------------
# The endpoints


def csrf_of(page) -> str:
    return re.search(r'data-csrf="([^"]+)"', page.get_data(as_text=True)).group(1)


def post_json(client, url, data, token=None, agent=CHROME_ANDROID):
    headers = {"User-Agent": agent}
    if token:
        headers["X-CSRFToken"] = token
    return client.post(url, json=data, headers=headers)


def test_subscribing_needs_the_csrf_token(app, client, session, owner, service):
    user, _, _ = owner
    app.config["WTF_CSRF_ENABLED"] = True  # the app's settings are put back after the test
    device = Device(service, "csrf")
    refused = post_json(client, "/cabinet/push/subscribe", device.json)
    assert refused.status_code == 400
    assert devices_of(session, user) == []

    token = csrf_of(client.get("/cabinet/profile/notifications"))
    done = post_json(client, "/cabinet/push/subscribe", device.json, token)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.json["device"] == "Chrome на Android"
    row, = devices_of(session, user)
    assert (row.endpoint, row.device) == (device.endpoint, "Chrome на Android")

    key = client.get("/cabinet/push/key")
    assert key.json == {"publicKey": push.public_key()}

    assert post_json(client, "/cabinet/push/unsubscribe", {"endpoint": device.endpoint}
                     ).status_code == 400  # no token
    assert post_json(client, "/cabinet/push/unsubscribe", {"endpoint": device.endpoint},
                     token).json == {"removed": True}
    assert devices_of(session, user) == []


def as_user(client):
    """The test's app context is shared by every client: forget the cached signed-in user."""
    g.pop("_login_user", None)
    return client


def sign_in(app, login: str):
    other = app.test_client()
    assert as_user(other).post("/auth/", data={"login": login, "password": PASSWORD}
                               ).status_code == 302
    return other


def test_a_shared_device_is_bound_to_whoever_subscribed_last(app, client, session, owner,
                                                             service, make_user_fn):
    user, _, _ = owner
    device = Device(service, "shared")
    assert post_json(client, "/cabinet/push/subscribe", device.json).status_code == 200
    relative = resident(make_user_fn, "relative")
    session.commit()
    second = sign_in(app, "relative")
    assert post_json(as_user(second), "/cabinet/push/subscribe", device.json,
                     agent=SAFARI_IPHONE).status_code == 200

    assert devices_of(session, user) == []
    row, = devices_of(session, relative)
    assert row.device == "Safari на iPhone"
    assert session.scalar(select(func.count(m.PushSubscription.id))) == 1
    # The one before gets nothing on that device any more.
    assert push.send(session, [(user.id, push.PushContent("Т", "Т", "/"))]) == set()
    assert service.received == []


def test_another_users_device_cannot_be_switched_off(app, client, session, owner, service,
                                                     make_user_fn):
    neighbour = session.execute(select(m.PortalUser).where(
        m.PortalUser.username == "neighbour")).scalar_one()
    theirs = subscribed(session, neighbour, Device(service, "theirs"))
    endpoint = theirs.endpoint

    page = client.post(f"/cabinet/push/devices/{theirs.id}/off", follow_redirects=True)
    assert "Это устройство не получает уведомления из вашего кабинета." in page.get_data(
        as_text=True)
    refused = post_json(client, "/cabinet/push/unsubscribe", {"endpoint": endpoint})
    assert refused.status_code == 404
    assert [d.endpoint for d in devices_of(session, neighbour)] == [endpoint]


@pytest.mark.parametrize("change, production", [
    (lambda s: s.pop("keys"), False),
    (lambda s: s["keys"].update(p256dh="AAAA"), False),
    (lambda s: s["keys"].update(p256dh=vapid.b64url_encode(b"\x04" + b"\x01" * 64)), False),
    (lambda s: s["keys"].update(auth=vapid.b64url_encode(b"x" * 15)), False),
    (lambda s: s.update(endpoint="ftp://push.example.com/x"), False),
    (lambda s: s.update(endpoint="https://user:pw@push.example.com/x"), False),
    (lambda s: s.update(endpoint="https://push.example.com/" + "x" * 1000), False),
    (lambda s: s.update(endpoint=None), False),
    (lambda s: s.update(endpoint="http://push.example.com/x"), True),
    (lambda s: s.update(endpoint="https://127.0.0.1/x"), True),
    (lambda s: s.update(endpoint="https://[::1]/x"), True),
    (lambda s: s.update(endpoint="https://localhost/x"), True),
])
def test_a_bad_subscription_is_refused_in_russian_and_saves_nothing(
        app, client, session, owner, service, change, production):
    user, _, _ = owner
    data = Device(service, "bad").json
    change(data)
    app.config["PRODUCTION"] = production
    answer = post_json(client, "/cabinet/push/subscribe", data)
    assert answer.status_code == 400
    assert answer.json["message"] == push.BAD_SUBSCRIPTION
    assert devices_of(session, user) == []


def test_a_person_may_subscribe_a_limited_number_of_devices(session, service, make_user_fn,
                                                            monkeypatch):
    monkeypatch.setattr(push, "MAX_DEVICES", 2)
    user = resident(make_user_fn, "many")
    subscribed(session, user, Device(service, "1"))
    second = Device(service, "2")
    subscribed(session, user, second)
    subscribed(session, user, second)  # the same device again: refreshed, not counted twice
    with pytest.raises(push.PushError):
        subscribed(session, user, Device(service, "3"))
    assert len(devices_of(session, user)) == 2


def test_organizations_use_their_own_page_and_endpoints(app, client, session, two_branches,
                                                        make_user_fn, service):
    krd, _ = two_branches
    org_user = make_user_fn("org-krd", "Business", kind="business",
                            organization_id=krd.ids["Organization"])
    client.post("/business/login", data={"login": "org-krd", "password": PASSWORD,
                                         "branch": krd.branch_id})
    assert client.get("/business/notifications/").status_code == 200
    device = Device(service, "org")
    assert post_json(client, "/business/notifications/subscribe", device.json,
                     agent=SAFARI_IPHONE).status_code == 200
    page = client.get("/business/notifications/").get_data(as_text=True)
    assert "Safari на iPhone" in page and PUSH_SCRIPT.search(page)
    # Not the residents' endpoints, and a resident not theirs.
    assert post_json(client, "/cabinet/push/subscribe", device.json).status_code == 403
    row, = devices_of(session, org_user)
    resident(make_user_fn, "someone")
    session.commit()
    other = sign_in(app, "someone")
    assert as_user(other).get("/business/notifications/").status_code == 403
    assert as_user(other).post(f"/business/notifications/devices/{row.id}/off"
                               ).status_code == 403
    assert devices_of(session, org_user) != []
    off = as_user(client).post(f"/business/notifications/devices/{row.id}/off",
                               follow_redirects=True)
    assert "Уведомления на устройстве «Safari на iPhone» отключены." in off.get_data(
        as_text=True)
    assert devices_of(session, org_user) == []


# ---------------------------------------------------------------------------------------------
# The profile


def test_the_profile_lists_a_device_and_switches_it_off(app, client, session, owner, service):
    user, _, _ = owner
    row = subscribed(session, user, Device(service, "mine"))
    page = client.get("/cabinet/profile/notifications").get_data(as_text=True)
    assert "Chrome на Android" in page and "Включить уведомления на этом устройстве" in page
    assert f"/cabinet/push/devices/{row.id}/off" in page
    assert PUSH_SCRIPT.search(page)
    assert row.endpoint not in page and row.p256dh not in page

    done = client.post(f"/cabinet/push/devices/{row.id}/off", follow_redirects=True)
    text = done.get_data(as_text=True)
    assert "Уведомления на устройстве «Chrome на Android» отключены." in text
    assert "Уведомления пока не включены ни на одном устройстве." in text
    assert devices_of(session, user) == []


def test_push_is_a_third_channel_per_topic_in_the_profile(app, client, session, owner):
    user, _, _ = owner
    client.post("/cabinet/profile/notifications", data={
        "notify_bills_email": "y", "notify_bills_push": "y", "notify_payments_push": "y"})
    session.expire_all()
    assert (user.notify_bills_push, user.notify_readings_push, user.notify_payments_push) == (
        True, False, True)
    assert user.notify_bills_email and not user.notify_bills_sms
    assert user.wants_notice("bills", "push") and not user.wants_notice("readings", "push")
    page = client.get("/cabinet/profile/notifications").get_data(as_text=True)
    checked = set(re.findall(r'name="(notify_\w+)"[^>]*checked', page)) | set(
        re.findall(r'checked[^>]*name="(notify_\w+)"', page))
    assert {"notify_bills_push", "notify_payments_push"} <= checked
    assert "notify_readings_push" not in checked


def test_without_a_push_transport_the_page_says_so(app, client, owner, monkeypatch):
    monkeypatch.setattr(push, "transport", lambda: None)
    page = client.get("/cabinet/profile/notifications").get_data(as_text=True)
    assert "Push-уведомления сейчас недоступны." in page and not PUSH_SCRIPT.search(page)
    answer = client.post("/cabinet/push/subscribe", json={})
    assert answer.status_code == 503 and answer.json["message"] == push.UNAVAILABLE


# ---------------------------------------------------------------------------------------------
# Devices' names, keys and the production check


@pytest.mark.parametrize("agent, label", [
    (CHROME_ANDROID, "Chrome на Android"),
    (SAFARI_IPHONE, "Safari на iPhone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
     "Firefox на Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge на Windows"),
    ("Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 YaBrowser/24.10.0.0 Mobile Safari/537.36", "Яндекс Браузер на Android"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", "Safari на Mac"),
    ("", "Неизвестное устройство"),
    ("curl/8.0", "Неизвестное устройство"),
])
def test_devices_are_named_for_people(agent, label):
    assert devices.device_label(agent) == label


def test_the_development_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "INSTANCE_ROOT", tmp_path)
    monkeypatch.delenv("VAPID_PRIVATE_KEY", raising=False)
    first = config_module.instance_vapid_key()
    assert config_module.instance_vapid_key() == first
    assert (tmp_path / "vapid_private_key").stat().st_mode & 0o777 == 0o600
    public = vapid.b64url_decode(vapid.public_key(first))
    assert len(public) == 65 and public[0] == 4


def test_flask_push_vapid_keys_prints_a_matching_pair(runner):
    result = runner.invoke(args=["push", "vapid-keys"])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.output.split())
    assert vapid.public_key(values["VAPID_PRIVATE_KEY"]) == values["VAPID_PUBLIC_KEY"]


def test_production_refuses_to_start_without_a_fit_vapid_key():
    private, public = vapid.generate()
    fit = {"PRODUCTION": True, "VAPID_PRIVATE_KEY": private, "SUPPLIER_EMAIL": "a@nesk.example"}

    def vapid_lines(config):
        return [line for line in problems(config) if "VAPID" in line]

    assert vapid_lines(fit) == []
    assert vapid_lines({**fit, "VAPID_PUBLIC_KEY": public}) == []
    missing, = vapid_lines({**fit, "VAPID_PRIVATE_KEY": None})
    assert missing.startswith("VAPID_PRIVATE_KEY не задан") and "push vapid-keys" in missing
    assert vapid_lines({**fit, "VAPID_PRIVATE_KEY": "not-a-key"})[0].startswith(
        "VAPID_PRIVATE_KEY не читается")
    assert vapid_lines({**fit, "VAPID_PUBLIC_KEY": vapid.generate()[1]})[0].startswith(
        "VAPID_PUBLIC_KEY не соответствует")
    assert vapid_lines({**fit, "VAPID_SUBJECT": "admin"})[0].startswith("VAPID_SUBJECT")
    assert problems({"VAPID_PRIVATE_KEY": None}) == []  # outside production nothing is checked
