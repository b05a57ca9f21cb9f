"""Small, explicit builders of test data: two branches, each with one of everything."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from flask_appbuilder.security.sqla.models import Group, assoc_user_group

from app import models as m

PASSWORD = "Тестовый-пароль-42"


@dataclass
class BranchWorld:
    """Ids of one branch's rows, one of every kind."""

    branch_id: int
    ids: dict[str, int] = field(default_factory=dict)


def make_user(session, sm, *, username: str, role: str, kind: str = "staff",
              branch_id: int | None = None, organization_id: int | None = None,
              phone: str | None = None) -> m.PortalUser:
    """Create a user with PASSWORD through FAB's security manager."""
    user = sm.add_user(
        username=username,
        first_name="Тест",
        last_name=username.capitalize(),
        email=f"{username}@example.test",
        role=sm.find_role(role),
        password=PASSWORD,
    )
    assert user, f"could not create {username}"
    user.kind = kind
    user.branch_id = branch_id
    user.organization_id = organization_id
    user.phone = phone
    session.commit()
    return user


def move_roles_to_a_group(session, user: m.PortalUser, name: str) -> int:
    """Take the user's roles away and give them back through a new group; returns its id.
    (FAB's Group.users is typed to its own User, so the link is inserted as a row.)"""
    group = Group(name=name, label=name)
    group.roles = list(user.roles)
    user.roles = []
    session.add(group)
    session.flush()
    session.execute(assoc_user_group.insert().values(user_id=user.id, group_id=group.id))
    session.commit()
    return group.id


def build_branch_world(session, code: str, name: str, city: str, n: int) -> BranchWorld:
    """One branch with one row of every kind: an organization with a contract, a household's
    account (23000000000n, in a flat, no contract: the one residents bind) and the
    organization's point of supply on the contract (23100000000n, in ids under
    ``OrganizationAccount``), each with a meter, a reading, a charge, an invoice and a succeeded
    payment; and an application, a feedback, a mailing and an act."""
    period = dt.date(2026, 10, 1)
    branch = m.Branch(code=code, name=name, city=city)
    group = m.TariffGroup(code=f"urban-{code}", name=f"Городское население ({city})")
    session.add_all([branch, group])
    session.flush()
    org = m.Organization(name=f"ООО «Ромашка-{city}»", inn=f"23080000{n:02d}", kpp="230801001",
                         branch_id=branch.id)
    session.add(org)
    session.flush()
    contract = m.Contract(number=f"Д-{code}-1", organization_id=org.id, branch_id=branch.id,
                          signed_on=dt.date(2024, 1, 1), valid_from=dt.date(2024, 1, 1),
                          status="active")
    premises = m.Premises(branch_id=branch.id, locality=city, locality_type="urban",
                          street="ул. Красная", house=str(n), flat="1")
    shop = m.Premises(branch_id=branch.id, locality=city, locality_type="urban",
                      street="ул. Северная", house=f"{n}0")
    session.add_all([contract, premises, shop])
    session.flush()
    account = m.PersonalAccount(number=f"23000000000{n}", holder_name=f"Иванов {city}",
                                premises_id=premises.id, branch_id=branch.id,
                                tariff_group_id=group.id, status="active",
                                opened_on=dt.date(2024, 1, 1))
    point = m.PersonalAccount(number=f"23100000000{n}", holder_name=org.name,
                              premises_id=shop.id, branch_id=branch.id, tariff_group_id=group.id,
                              contract_id=contract.id, status="active",
                              opened_on=dt.date(2024, 1, 1))
    session.add_all([account, point])
    session.flush()
    meter = m.Meter(serial=f"SN-{code}-{n}", account_id=account.id, zones=1, digit_capacity=6)
    point_meter = m.Meter(serial=f"ORG-{code}-{n}", account_id=point.id, zones=1,
                          digit_capacity=6)
    tariff = m.Tariff(tariff_group_id=group.id, zones=1, zone="T1", range_no=1,
                      rate=Decimal("7.3500"), effective_from=dt.date(2025, 7, 1))
    rng = m.ConsumptionRange(tariff_group_id=group.id, season="heating", range_no=1,
                             upper_kwh=Decimal("1100"), effective_from=dt.date(2025, 7, 1))
    session.add_all([meter, point_meter, tariff, rng])
    session.flush()
    reading = m.Reading(meter_id=meter.id, period=period, t1=Decimal("1234"), source="web")
    charge = m.Charge(account_id=account.id, period=period, meter_id=meter.id, zone="T1",
                      range_no=1, kwh=Decimal("100"), rate=Decimal("7.35"),
                      amount=Decimal("735.00"), kind="metered")
    invoice = m.Invoice(number=f"INV-{code}-202610", account_id=account.id, period=period,
                        opening_balance=Decimal("0"), charged=Decimal("735.00"),
                        paid=Decimal("0"), amount_due=Decimal("735.00"),
                        due_date=dt.date(2026, 11, 10))
    payment = m.Payment(account_id=account.id, amount=Decimal("500.00"), method="card",
                        status="succeeded", external_id=f"ext-{code}")
    # The organization's point of supply: other figures, so a page showing them is told apart.
    point_reading = m.Reading(meter_id=point_meter.id, period=period, t1=Decimal("5678"),
                              source="web")
    point_charge = m.Charge(account_id=point.id, period=period, meter_id=point_meter.id,
                            zone="T1", range_no=1, kwh=Decimal("120"), rate=Decimal("7.35"),
                            amount=Decimal("882.00"), kind="metered")
    point_invoice = m.Invoice(number=f"INV-{code}-ORG-202610", account_id=point.id,
                              period=period, opening_balance=Decimal("0"),
                              charged=Decimal("882.00"), paid=Decimal("0"),
                              amount_due=Decimal("882.00"), due_date=dt.date(2026, 11, 10))
    point_payment = m.Payment(account_id=point.id, amount=Decimal("450.00"), method="bank",
                              status="succeeded", external_id=f"ext-{code}-org")
    application = m.ContractApplication(branch_id=branch.id, applicant_name=f"Петров {city}",
                                        address=f"{city}, ул. Мира, 1")
    feedback = m.Feedback(branch_id=branch.id, account_id=account.id, topic="Вопрос",
                          message="Когда будет счёт?")
    mailing = m.Mailing(subject=f"Новости {city}", body="Текст", branch_id=branch.id)
    act = m.ReconciliationAct(organization_id=org.id, contract_id=contract.id,
                              date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 9, 30))
    session.add_all([reading, charge, invoice, payment, point_reading, point_charge,
                     point_invoice, point_payment, application, feedback, mailing, act])
    session.flush()
    world = BranchWorld(branch.id)
    world.ids.update(
        Branch=branch.id, TariffGroup=group.id, Organization=org.id, Contract=contract.id,
        Premises=premises.id, PersonalAccount=account.id, Meter=meter.id, Tariff=tariff.id,
        ConsumptionRange=rng.id, Reading=reading.id, Charge=charge.id, Invoice=invoice.id,
        Payment=payment.id, ContractApplication=application.id, Feedback=feedback.id,
        Mailing=mailing.id, ReconciliationAct=act.id,
        OrganizationPremises=shop.id, OrganizationAccount=point.id,
        OrganizationMeter=point_meter.id, OrganizationReading=point_reading.id,
        OrganizationCharge=point_charge.id, OrganizationInvoice=point_invoice.id,
        OrganizationPayment=point_payment.id,
    )
    session.commit()
    return world
