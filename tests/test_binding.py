"""Binding personal accounts by account number and meter serial."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import AccountBinding, AuditEvent, Meter, PersonalAccount
from app.services.binding import BindingError, bind_accounts, unbind_account
from app.services.throttle import Throttled


@pytest.fixture
def owner(make_user_fn):
    return make_user_fn("owner", "Resident", kind="resident")


def bindings(session, user_id):
    return set(session.execute(select(AccountBinding.account_id)
                               .where(AccountBinding.user_id == user_id)).scalars())


def test_binds_several_accounts_in_one_go(session, owner, two_branches):
    krd, nvr = two_branches
    result = bind_accounts(session, owner.id, [("230000000001", "sn-krd-1"),
                                               (" 2300 0000 0002 ", "SN-NVR-2")], "10.0.0.1")
    assert result.bound == ["230000000001", "230000000002"] and not result.refused
    assert bindings(session, owner.id) == {krd.ids["PersonalAccount"],
                                           nvr.ids["PersonalAccount"]}
    assert session.execute(select(func.count()).where(
        AuditEvent.action == "account.bound")).scalar_one() == 2


def test_wrong_meter_binds_nothing_and_says_the_same(session, owner, two_branches):
    result = bind_accounts(session, owner.id, [("230000000001", "SN-NVR-2"),
                                               ("230000000099", "SN-KRD-1")], None)
    assert result.refused == ["230000000001", "230000000099"] and not result.bound
    assert bindings(session, owner.id) == set()


def test_rebinding_is_harmless(session, owner, two_branches):
    bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], None)
    again = bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], None)
    assert again.already == ["230000000001"] and not again.bound
    assert session.execute(select(func.count(AccountBinding.id))).scalar_one() == 1


def test_family_members_may_share_an_account(session, owner, make_user_fn, two_branches):
    spouse = make_user_fn("spouse", "Resident", kind="resident")
    bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], None)
    bind_accounts(session, spouse.id, [("230000000001", "SN-KRD-1")], None)
    assert session.execute(select(func.count(AccountBinding.id))).scalar_one() == 2


def test_closed_account_cannot_be_bound(session, owner, two_branches):
    krd, _ = two_branches
    session.get(PersonalAccount, krd.ids["PersonalAccount"]).status = "closed"
    session.commit()
    result = bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], None)
    assert result.refused == ["230000000001"]


@pytest.mark.parametrize("pairs, message", [
    ([], "Укажите номер"),
    ([("12345", "SN")], "от 7 до 13 цифр"),
    ([("230000000001", "")], "Укажите заводской номер"),
    ([(f"2300000000{i:02d}", "SN") for i in range(11)], "не более 10"),
])
def test_bad_input_changes_nothing(session, owner, two_branches, pairs, message):
    with pytest.raises(BindingError, match=message):
        bind_accounts(session, owner.id, pairs, None)
    assert bindings(session, owner.id) == set()


def test_guessing_is_throttled_per_user(session, owner, two_branches):
    for i in range(10):
        bind_accounts(session, owner.id, [(f"2300000001{i:02d}", "X")], f"10.0.0.{i}")
    with pytest.raises(Throttled, match="Слишком много неудачных попыток привязать счёт"):
        bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], "10.0.1.1")
    assert bindings(session, owner.id) == set()


def test_unbind_removes_only_ones_own_binding(session, owner, make_user_fn, two_branches):
    krd, _ = two_branches
    stranger = make_user_fn("stranger", "Resident", kind="resident")
    bind_accounts(session, owner.id, [("230000000001", "SN-KRD-1")], None)
    account_id = krd.ids["PersonalAccount"]
    assert unbind_account(session, stranger.id, account_id, None) is False
    assert bindings(session, owner.id) == {account_id}
    assert unbind_account(session, owner.id, account_id, None) is True
    assert bindings(session, owner.id) == set()
    assert session.get(PersonalAccount, account_id) is not None
    assert session.execute(select(func.count(Meter.id))).scalar_one() == 4  # two per branch


def test_cabinet_binds_and_unbinds_through_the_web(client, make_user_fn, two_branches, session):
    krd, nvr = two_branches
    owner = make_user_fn("webowner", "Resident", kind="resident")
    stranger = make_user_fn("webstranger", "Resident", kind="resident")
    client.post("/auth/", data={"login": "webowner", "password": "Тестовый-пароль-42"})
    r = client.post("/cabinet/bind", data={"account": ["230000000001", "230000000002"],
                                           "serial": ["SN-KRD-1", "wrong"]})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Привязаны лицевые счета: 230000000001." in page
    assert "Не нашли лицевой счёт с таким прибором учёта" in page
    home = client.get("/cabinet/").get_data(as_text=True)
    assert "230000000001" in home and "230000000002" not in home
    assert "Задолженность 235,00 ₽" in home.replace("\u00a0", " ")
    assert "<dt>Начислено за октябрь 2026</dt><dd>735,00 ₽</dd>" in home.replace("\u00a0", " ")
    # another user's account id in the URL changes nothing and reveals nothing
    assert client.post(f"/cabinet/unbind/{nvr.ids['PersonalAccount']}").status_code == 404
    bind_accounts(session, stranger.id, [("230000000002", "SN-NVR-2")], None)
    assert client.post(f"/cabinet/unbind/{nvr.ids['PersonalAccount']}").status_code == 404
    assert bindings(session, stranger.id) == {nvr.ids["PersonalAccount"]}
    r = client.post(f"/cabinet/unbind/{krd.ids['PersonalAccount']}")
    assert r.status_code == 302 and bindings(session, owner.id) == set()
