"""The one rule of whose rows a customer sees (app.services.own_rows), as the cabinet's lists
and the API apply it: a resident their bound accounts' rows, an organization its contracts'
accounts, contracts and acts, anyone else nothing."""
from __future__ import annotations

from sqlalchemy import select

from app import models as m
from app.services import own_rows
from app.services.binding import bind_accounts


def visible(session, user, model) -> set[int]:
    return set(session.execute(select(model.id).where(
        own_rows.condition(session, user, model))).scalars())


def test_each_kind_of_user_sees_its_own_rows_and_no_one_elses(session, two_branches,
                                                              make_user_fn):
    krd, nvr = two_branches
    resident = make_user_fn("resident", "Resident", kind="resident")
    bind_accounts(session, resident.id, [("230000000001", "SN-krd-1")], None)
    organization = make_user_fn("org", "Business", kind="business",
                                organization_id=nvr.ids["Organization"])
    staff = make_user_fn("operator", "Staff", branch_id=krd.branch_id)

    assert visible(session, resident, m.PersonalAccount) == {krd.ids["PersonalAccount"]}
    assert visible(session, resident, m.Charge) == {krd.ids["Charge"]}
    assert visible(session, resident, m.Reading) == {krd.ids["Reading"]}  # by its meter
    assert visible(session, resident, m.ReconciliationAct) == set()

    assert visible(session, organization, m.PersonalAccount) == {
        nvr.ids["OrganizationAccount"]}
    assert visible(session, organization, m.Contract) == {nvr.ids["Contract"]}
    assert visible(session, organization, m.ReconciliationAct) == {
        nvr.ids["ReconciliationAct"]}
    assert visible(session, organization, m.Reading) == {nvr.ids["OrganizationReading"]}

    for nobody in (staff, None):
        for model in (m.PersonalAccount, m.Charge, m.Invoice, m.Contract, m.ReconciliationAct):
            assert visible(session, nobody, model) == set()
