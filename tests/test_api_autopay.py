"""Autopay over the mobile app's API: the resident's accounts with their autopay, the cap,
switching on through the sandbox's first payment (409 with its confirmation URL), back on with
the saved card, switching off, removing the card; another resident's account, card and payment
are 404 and change nothing; an organization's user is refused; a bad cap is a 400 or 422 in
Russian with nothing changed; every operation keeps to the spec (Schemathesis, as in
tests/test_api_schema.py). SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from urllib.parse import urlparse

import pytest
import schemathesis
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source
from sqlalchemy import func, select

from app import models as m
from app.services import payment_states
from app.views.api_autopay import BAD_CAP, CAP, NO_CONSENT
from tests.test_api import API, bearer, login
from tests.test_api_schema import CHECKS, schemathesis_config, spec  # noqa: F401  (fixture)

AUTOPAY = f"{API}/autopay"
OK_CARD = "4111 1111 1111 1111"
PHONE, NEIGHBOUR_PHONE = "+79185550071", "+79185550072"


# Fixtures and helpers -----------------------------------------------------------------------


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def setting_of(session, user_id: int, account_id: int) -> m.AutopaySetting | None:
    session.expire_all()
    return session.execute(select(m.AutopaySetting).where(
        m.AutopaySetting.user_id == user_id, m.AutopaySetting.account_id == account_id)
    ).scalar_one_or_none()


@pytest.fixture
def people(client, session, two_branches, make_user_fn, sandbox):
    """A resident with Krasnodar's account bound (``headers``: their token), and a neighbour
    with Novorossiysk's, whose autopay is on with a saved card; an organization's user."""
    krd, nvr = two_branches
    resident = make_user_fn("payer", "Resident", kind="resident", phone=PHONE)
    neighbour = make_user_fn("neighbour", "Resident", kind="resident", phone=NEIGHBOUR_PHONE)
    make_user_fn("org-krd", "Business", kind="business", organization_id=krd.ids["Organization"])
    mine, theirs = krd.ids["PersonalAccount"], nvr.ids["PersonalAccount"]
    card = m.SavedPaymentMethod(user_id=neighbour.id, gateway="sandbox", token="sbm_neighbour",
                                card_last4="4444", expiry_month=1, expiry_year=2031,
                                card_type="MasterCard")
    session.add_all([m.AccountBinding(user_id=resident.id, account_id=mine),
                     m.AccountBinding(user_id=neighbour.id, account_id=theirs), card])
    session.flush()
    session.add(m.AutopaySetting(user_id=neighbour.id, account_id=theirs, status="active",
                                 cap=Decimal("700.00"), method_id=card.id,
                                 setup_order_key="neighbours-first-payment"))
    session.commit()
    tokens = login(client, PHONE)
    assert tokens.status_code == 200, tokens.json
    return {"resident": resident, "neighbour": neighbour, "mine": mine, "theirs": theirs,
            "card": card.id, "headers": bearer(tokens.json["access_token"]),
            "branch": krd.branch_id}


def put(client, people, account_id: int, body) -> object:
    return client.put(f"{AUTOPAY}/{account_id}", headers=people["headers"], json=body)


def pay_on_the_sandbox(client, confirmation_url: str, save_card: bool = True) -> str:
    """Pay the first payment on the sandbox's page as the payer would; returns where the
    gateway sends them back."""
    page = urlparse(confirmation_url).path
    assert page.startswith("/sandbox-pay/sb_")
    assert "Сохранить карту для автоплатежа" in client.get(page).get_data(as_text=True)
    data = {"number": OK_CARD, "expiry": "12/30", "cvc": "123", "pay": "1"}
    if save_card:
        data["save_card"] = "1"
    response = client.post(page, data=data)
    assert response.status_code == 302
    return response.headers["Location"]


def switch_on(client, people, cap=None) -> dict:
    """Switch autopay on over the API and pay the first payment; returns the setup answer."""
    started = put(client, people, people["mine"], {"cap": cap, "consent": True})
    assert started.status_code == 409, started.json
    back = pay_on_the_sandbox(client, started.json["confirmation_url"])
    assert back == started.json["return_url"]
    outcome = client.get(f"{AUTOPAY}/setup/{started.json['order_key']}",
                         headers=people["headers"])
    assert outcome.status_code == 200, outcome.json
    return outcome.json


@pytest.fixture
def on(client, session, people):
    """The resident's autopay on with the 4111 card (the first payment paid the 235,00 debt)."""
    assert switch_on(client, people)["outcome"] == "active"
    return setting_of(session, people["resident"].id, people["mine"])


def new_bill(session, account_id: int, amount: str, due: dt.date) -> m.Invoice:
    """A bill issued now for ``amount``, the account's latest, and its charge."""
    period = dt.date(2099, 1, 1)
    session.add(m.Charge(account_id=account_id, period=period, amount=Decimal(amount),
                         kind="adjustment", kwh=Decimal("0")))
    invoice = m.Invoice(number=f"INV-{account_id}-209901", account_id=account_id,
                        period=period, opening_balance=Decimal("0"), charged=Decimal(amount),
                        paid=Decimal("0"), amount_due=Decimal(amount), due_date=due)
    session.add(invoice)
    session.commit()
    return invoice


# Reading ------------------------------------------------------------------------------------


def test_the_list_has_every_own_account_and_no_one_elses_autopay(client, session, people):
    session.add(m.AccountBinding(user_id=people["resident"].id, account_id=people["theirs"]))
    session.commit()  # the neighbour's account shared: their autopay is theirs, not shown
    response = client.get(f"{AUTOPAY}/", headers=people["headers"])
    assert response.status_code == 200, response.json
    assert response.json["available"] is True and response.json["count"] == 2
    by_id = {item["account_id"]: item for item in response.json["result"]}
    assert set(by_id) == {people["mine"], people["theirs"]}
    assert by_id[people["mine"]] == {
        "account_id": people["mine"], "number": "230000000001",
        "address": by_id[people["mine"]]["address"], "balance": "235.00", "status": "none",
        "cap": None, "card": None, "card_usable": False, "next_charge": None,
        "first_payment": "235.00", "failures": 0}
    assert "Краснодар" in by_id[people["mine"]]["address"]
    assert by_id[people["theirs"]]["status"] == "none" and by_id[people["theirs"]]["card"] is None


def test_one_account_with_card_cap_and_next_charge(client, session, people, on):
    put(client, people, people["mine"], {"cap": "100.00"})
    due = dt.date.today() + dt.timedelta(days=10)
    new_bill(session, people["mine"], "300.00", due)
    response = client.get(f"{AUTOPAY}/{people['mine']}", headers=people["headers"])
    assert response.status_code == 200
    assert response.json["id"] == people["mine"]
    item = response.json["result"]
    assert (item["status"], item["cap"], item["balance"]) == ("active", "100.00", "300.00")
    assert item["card"] == {"id": on.method_id, "last4": "1111", "expiry": "12/30",
                            "expiry_month": 12, "expiry_year": 2030, "type": "Visa",
                            "label": "Visa •••• 1111"}
    assert item["card_usable"] is True and item["first_payment"] is None
    assert item["next_charge"] == {"date": (due - dt.timedelta(days=1)).isoformat(),
                                   "amount": "100.00", "period": "2099-01-01"}


# Switching on ------------------------------------------------------------------------------


def test_turning_on_answers_409_with_the_gateways_page_then_the_setup_outcome(
        client, session, people, sandbox):
    started = put(client, people, people["mine"], {"cap": "1500.00", "consent": True})
    assert started.status_code == 409
    body = started.json
    assert body["amount"] == "235.00"
    assert "оплатите 235,00\u00a0₽" in body["message"] and "confirmation_url" in body["message"]
    order = session.execute(select(m.PaymentOrder)).scalar_one()
    assert body["order_key"] == order.order_key
    assert body["confirmation_url"] == order.confirmation_url
    assert urlparse(body["return_url"]).path == f"/cabinet/autopay/return/{order.order_key}"
    setting = setting_of(session, people["resident"].id, people["mine"])
    assert (setting.status, setting.cap) == ("pending", Decimal("1500.00"))
    pending = client.get(f"{AUTOPAY}/{people['mine']}", headers=people["headers"])
    assert pending.json["result"]["status"] == "pending"

    assert pay_on_the_sandbox(client, body["confirmation_url"]) == body["return_url"]
    # the app asks how it went: the portal asks the gateway (no notification has come)
    assert not count(session, m.SavedPaymentMethod,
                     m.SavedPaymentMethod.user_id == people["resident"].id)
    outcome = client.get(f"{AUTOPAY}/setup/{body['order_key']}", headers=people["headers"])
    assert outcome.status_code == 200, outcome.json
    assert outcome.json["outcome"] == "active"
    assert outcome.json["message"].startswith("Автоплатёж включён")
    assert outcome.json["result"]["status"] == "active"
    assert outcome.json["result"]["cap"] == "1500.00"
    assert outcome.json["result"]["balance"] == "0.00"
    assert outcome.json["result"]["card"]["last4"] == "1111"


def test_a_first_payment_without_the_card_saved_says_so(client, session, people, sandbox):
    started = put(client, people, people["mine"], {"cap": None, "consent": True})
    pay_on_the_sandbox(client, started.json["confirmation_url"], save_card=False)
    outcome = client.get(f"{AUTOPAY}/setup/{started.json['order_key']}",
                         headers=people["headers"])
    assert outcome.json["outcome"] == "no_card"
    assert "карта не сохранена" in outcome.json["message"]
    assert outcome.json["result"]["status"] == "pending"


def test_turning_on_needs_the_consent(client, session, people):
    response = put(client, people, people["mine"], {"cap": "100.00"})
    assert response.status_code == 422
    assert response.json == {"message": NO_CONSENT}
    assert count(session, m.PaymentOrder) == 0
    assert setting_of(session, people["resident"].id, people["mine"]) is None


def test_a_gateway_that_saves_no_cards_refuses_in_russian(client, session, people, sandbox,
                                                          monkeypatch):
    monkeypatch.setattr(type(sandbox), "saves_methods", False)
    assert client.get(f"{AUTOPAY}/", headers=people["headers"]).json["available"] is False
    response = put(client, people, people["mine"], {"cap": None, "consent": True})
    assert response.status_code == 422
    assert "Автоплатёж сейчас недоступен" in response.json["message"]
    assert count(session, m.PaymentOrder) == 0


# The cap, off, back on, the card ------------------------------------------------------------


def test_the_cap_is_set_and_cleared(client, session, people, on):
    response = put(client, people, people["mine"], {"cap": "1500.5"})
    assert response.status_code == 200, response.json
    assert response.json["message"] == "Предел суммы автоплатежа сохранён."
    assert response.json["result"]["cap"] == "1500.50"
    assert setting_of(session, people["resident"].id, people["mine"]).cap == Decimal("1500.50")
    cleared = put(client, people, people["mine"], {"cap": None})
    assert cleared.status_code == 200
    assert cleared.json["message"].startswith("Предел снят")
    assert cleared.json["result"]["cap"] is None
    assert setting_of(session, people["resident"].id, people["mine"]).cap is None
    assert count(session, m.PaymentOrder) == 1  # the first payment only


@pytest.mark.parametrize("cap, status, message", [
    ("abc", 400, BAD_CAP),
    ("12.345", 400, BAD_CAP),
    ("-5.00", 400, BAD_CAP),
    ("1,5", 400, BAD_CAP),
    (1500, 400, "Ожидается строка."),
    ("0.00", 422, "Предел суммы: сумма должна быть больше нуля."),
])
def test_a_bad_cap_is_refused_in_russian_and_changes_nothing(client, session, people, on, cap,
                                                             status, message):
    response = put(client, people, people["mine"], {"cap": cap})
    assert response.status_code == status, response.json
    assert message in str(response.json)
    if status == 400:
        assert response.json["errors"]["cap"] == [message]
    setting = setting_of(session, people["resident"].id, people["mine"])
    assert (setting.status, setting.cap) == ("active", None)


@pytest.mark.parametrize("body", [None, [], {"consent": True}, {"cap": None, "extra": 1},
                                  {"cap": None, "consent": "yes"}])
def test_a_malformed_body_is_400(client, session, people, on, body):
    if body is None:
        response = client.put(f"{AUTOPAY}/{people['mine']}", headers=people["headers"],
                              data="1500", content_type="text/plain")
    else:
        response = put(client, people, people["mine"], body)
    assert response.status_code == 400
    assert not response.json["message"].isascii()
    assert setting_of(session, people["resident"].id, people["mine"]).status == "active"


def test_switching_off_then_back_on_with_the_saved_card(client, session, people, on):
    off = client.delete(f"{AUTOPAY}/{people['mine']}", headers=people["headers"])
    assert off.status_code == 200, off.json
    assert off.json["message"].startswith("Автоплатёж выключен")
    assert off.json["result"]["status"] == "off"
    assert off.json["result"]["card"]["last4"] == "1111"
    setting = setting_of(session, people["resident"].id, people["mine"])
    assert setting.status == "off" and setting.method_id is not None
    again = put(client, people, people["mine"], {"cap": "200.00", "consent": True})
    assert again.status_code == 200, again.json
    assert again.json["message"] == "Автоплатёж снова включён с сохранённой картой."
    assert (again.json["result"]["status"], again.json["result"]["cap"]) == ("active",
                                                                             "200.00")
    assert count(session, m.PaymentOrder) == 1  # no second payment


def test_removing_the_card_switches_autopay_off(client, session, people, on, sandbox):
    token = on.method.token
    response = client.delete(f"{AUTOPAY}/cards/{on.method_id}", headers=people["headers"])
    assert response.status_code == 200
    assert response.json == {"message": "Карта удалена, автоплатёж с неё выключен."}
    assert count(session, m.SavedPaymentMethod,
                 m.SavedPaymentMethod.user_id == people["resident"].id) == 0
    assert sandbox.store.method(token) is None
    item = client.get(f"{AUTOPAY}/{people['mine']}", headers=people["headers"]).json["result"]
    assert (item["status"], item["card"]) == ("off", None)
    again = client.delete(f"{AUTOPAY}/cards/{on.method_id}", headers=people["headers"])
    assert again.status_code == 404


# Another's ids, another kind of user --------------------------------------------------------


def neighbours_state(session, people) -> tuple:
    setting = setting_of(session, people["neighbour"].id, people["theirs"])
    return (setting.status, setting.cap, setting.method_id,
            count(session, m.SavedPaymentMethod), count(session, m.PaymentOrder),
            count(session, m.AuditEvent, m.AuditEvent.action.like("autopay.%")))


@pytest.mark.parametrize("method, path, body", [
    ("get", "/{theirs}", None),
    ("get", "/2147483647", None),
    ("get", "/0", None),
    ("put", "/{theirs}", {"cap": "1.00"}),
    ("put", "/{theirs}", {"cap": None, "consent": True}),
    ("put", "/2147483647", {"cap": None, "consent": True}),
    ("delete", "/{theirs}", None),
    ("delete", "/2147483647", None),
    ("delete", "/cards/{card}", None),
    ("delete", "/cards/2147483647", None),
    ("get", "/setup/neighbours-first-payment", None),
    ("get", "/setup/" + "a" * 65, None),
])
def test_another_residents_ids_are_not_found_and_change_nothing(client, session, people,
                                                                method, path, body):
    before = neighbours_state(session, people)
    url = AUTOPAY + path.format(theirs=people["theirs"], card=people["card"])
    response = getattr(client, method)(url, headers=people["headers"],
                                       **({"json": body} if body is not None else {}))
    assert response.status_code == 404, response.json
    assert response.json == {"message": "Не найдено."}
    assert neighbours_state(session, people) == before


def test_the_setup_outcome_is_only_of_an_autopays_first_payment(client, session, people,
                                                                sandbox):
    """An ordinary payment of the resident's own is not an autopay's: 404, nothing set up."""
    state = payment_states.start_payment(session, people["resident"], [(people["mine"],
                                                                         Decimal("10.00"))],
                                         lambda key: "http://localhost/back")
    response = client.get(f"{AUTOPAY}/setup/{state.order.order_key}",
                          headers=people["headers"])
    assert response.status_code == 404
    assert setting_of(session, people["resident"].id, people["mine"]) is None


def test_an_own_account_without_autopay_cannot_be_switched_off(client, session, people):
    response = client.delete(f"{AUTOPAY}/{people['mine']}", headers=people["headers"])
    assert response.status_code == 404
    assert setting_of(session, people["resident"].id, people["mine"]) is None


def test_an_organizations_user_is_refused(client, session, people):
    token = login(client, "org-krd", people["branch"]).json["access_token"]
    headers, before = bearer(token), neighbours_state(session, people)
    for method, path, body in [("get", "/", None), ("get", f"/{people['theirs']}", None),
                               ("put", f"/{people['theirs']}", {"cap": None,
                                                                "consent": True}),
                               ("delete", f"/{people['theirs']}", None),
                               ("delete", f"/cards/{people['card']}", None),
                               ("get", "/setup/neighbours-first-payment", None)]:
        response = getattr(client, method)(AUTOPAY + path, headers=headers,
                                           **({"json": body} if body is not None else {}))
        assert response.status_code == 403, (method, path)
        assert response.json == {"message": "Нет доступа."}
    assert neighbours_state(session, people) == before


def test_without_a_token_it_is_401(client, people):
    response = client.get(f"{AUTOPAY}/")
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


# The spec ------------------------------------------------------------------------------------


def test_the_spec_lists_every_autopay_operation(spec):  # noqa: F811
    operations = {f"{method.upper()} {path}" for path, item in spec["paths"].items()
                  if path.startswith(AUTOPAY) for method in item}
    assert operations == {f"GET {AUTOPAY}/", f"GET {AUTOPAY}/{{account_id}}",
                          f"PUT {AUTOPAY}/{{account_id}}", f"DELETE {AUTOPAY}/{{account_id}}",
                          f"DELETE {AUTOPAY}/cards/{{method_id}}",
                          f"GET {AUTOPAY}/setup/{{order_key}}"}
    cap = spec["components"]["schemas"]["AutopayChangeSchema"]["properties"]["cap"]
    assert (cap["type"], cap["nullable"], cap["pattern"]) == ("string", True, CAP)
    item = spec["components"]["schemas"]["AutopaySchema"]["properties"]
    assert item["cap"]["type"] == item["balance"]["type"] == "string"


def test_every_autopay_operation_conforms_to_the_spec(app, client, session, spec,  # noqa: F811
                                                      people, on):
    """Schemathesis over the autopay operations as the resident (autopay on, a saved card):
    examples, the coverage phase and fuzzing, every check of tests/test_api_schema.py."""
    tokens = login(client, PHONE, refresh=True).json
    # half the generated ids are the resident's own: random ones would hardly ever be
    own = {"account_id": people["mine"], "method_id": on.method_id}
    schema = schemathesis.openapi.from_dict(spec, config=schemathesis_config(
        tokens, dictionaries={name: {"values": [pk]} for name, pk in own.items()},
        parameters={f"path.{name}": {"dictionary": name, "probability": 0.5} for name in own}))
    schema.app = app
    feedback = FeedbackSources(constants_value_source=make_constants_value_source(schema))
    calls, answers, failures = Counter(), Counter(), []
    operations = [result.ok() for result in schema.get_all_operations()]
    # reading and the cap before switching off and removing the card
    order = {"GET": 0, "PUT": 1, "DELETE": 2}
    for operation in sorted(operations, key=lambda op: (order.get(op.method.upper(), 3),
                                                        "cards" in op.path)):
        if not operation.path.startswith(f"{AUTOPAY}/"):
            continue

        def call(case):
            calls[case.operation.label, case.meta.phase.name.value] += 1
            response = case.call_and_validate(checks=CHECKS)
            if case.method == case.operation.method.upper():  # not the check of others
                answers[case.operation.label, response.status_code // 100] += 1

        test = build_operation_test(config=schema.config, operation=operation, test_func=call,
                                    given_kwargs={}, feedback=feedback)
        try:
            test()
        except (Exception, FailureGroup) as error:
            failures.append(f"{operation.label}\n{error}")
    assert not failures, "\n\n".join(failures)
    tested = {label for label, _phase in calls}
    assert len(tested) == 6, tested
    assert all(calls[label, phase] >= 5 for label in tested
               for phase in ("coverage", "fuzzing")), calls
    # generated requests reach the resident's own account and card, not refusals alone
    assert all(answers[label, 2] for label in tested if "/setup/" not in label), answers


def test_every_autopay_answer_is_documented(client, session, spec, people,  # noqa: F811
                                            sandbox):
    """The answers made on purpose (200, 409, 404, 400, 422), each checked against the spec
    of its operation: status, headers and body."""
    schema = schemathesis.openapi.from_dict(spec)
    headers, mine = people["headers"], people["mine"]
    cases = [
        ("GET", "/", client.get(f"{AUTOPAY}/", headers=headers), 200),
        ("GET", "/{account_id}", client.get(f"{AUTOPAY}/{mine}", headers=headers), 200),
        ("GET", "/{account_id}", client.get(f"{AUTOPAY}/{people['theirs']}",
                                            headers=headers), 404),
        ("PUT", "/{account_id}", put(client, people, mine, {"cap": "0.00",
                                                            "consent": True}), 422),
        ("PUT", "/{account_id}", put(client, people, mine, {"cap": "x"}), 400),
        ("PUT", "/{account_id}", put(client, people, mine, {"cap": None}), 422),
        ("DELETE", "/{account_id}", client.delete(f"{AUTOPAY}/{mine}", headers=headers), 404),
        ("POST", "/{account_id}", client.post(f"{AUTOPAY}/{mine}", headers=headers), 405),
    ]
    started = put(client, people, mine, {"cap": None, "consent": True})
    cases.append(("PUT", "/{account_id}", started, 409))
    pay_on_the_sandbox(client, started.json["confirmation_url"])
    key = started.json["order_key"]
    cases.append(("GET", "/setup/{order_key}",
                  client.get(f"{AUTOPAY}/setup/{key}", headers=headers), 200))
    method_id = setting_of(session, people["resident"].id, mine).method_id
    cases += [
        ("PUT", "/{account_id}", put(client, people, mine, {"cap": "10.00"}), 200),
        ("DELETE", "/{account_id}", client.delete(f"{AUTOPAY}/{mine}", headers=headers), 200),
        ("DELETE", "/cards/{method_id}", client.delete(f"{AUTOPAY}/cards/{method_id}",
                                                       headers=headers), 200),
        ("DELETE", "/cards/{method_id}", client.delete(f"{AUTOPAY}/cards/{method_id}",
                                                       headers=headers), 404),
    ]
    failures = []
    for method, path, response, status in cases:
        assert response.status_code == status, (method, path, response.json)
        if status == 405:
            assert response.headers["Allow"] and not response.json["message"].isascii()
            continue
        operation = schema[f"{AUTOPAY}{path}"][method]
        parameters = {name: 1 for name in re.findall(r"\{(\w+)\}", path)}
        case = operation.Case(path_parameters=parameters or None)
        try:
            case.validate_response(response, checks=[
                checks.status_code_conformance, checks.content_type_conformance,
                checks.response_headers_conformance, checks.response_schema_conformance])
        except (Exception, FailureGroup) as error:
            failures.append(f"{method} {path}: {status}\n{error}")
        if status >= 400:
            assert not response.json["message"].isascii(), (method, path)
    assert not failures, "\n\n".join(failures)
