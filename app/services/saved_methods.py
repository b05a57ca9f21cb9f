"""Cards a gateway saved for autopay: recording the one a first payment saved (called by the
payment state machine when that payment succeeds, whichever way the news came: the
notification, the payer's return or the create answer), and forgetting one.

The portal keeps only the gateway's token, needed to charge the card (it is not the card),
with the last four digits, the expiry and the card type to show it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import AutopaySetting, PaymentOrder, SavedPaymentMethod
from app.services import audit
from app.services.payments import SavedMethod


def remember(session: Session, order: PaymentOrder, saved: SavedMethod) -> bool:
    """The first payment of an autopay (``setup_order_key``) succeeded with the card saved:
    keep the card and switch the autopay on. A payment nobody set autopay up with, or whose
    card the payer did not agree to save, changes nothing. True when autopay went on."""
    setting = session.execute(select(AutopaySetting).where(
        AutopaySetting.setup_order_key == order.order_key,
        AutopaySetting.status == "pending")).scalar_one_or_none()
    if setting is None or not saved.saved or not saved.id:
        return False
    method = session.execute(select(SavedPaymentMethod).where(
        SavedPaymentMethod.gateway == order.gateway,
        SavedPaymentMethod.token == saved.id)).scalar_one_or_none()
    if method is None:
        method = SavedPaymentMethod(user_id=setting.user_id, gateway=order.gateway,
                                    token=saved.id)
        session.add(method)
    elif method.user_id != setting.user_id:  # a token is one payer's: never share it
        return False
    method.card_last4 = (saved.card_last4 or "")[-4:] or None
    method.expiry_month, method.expiry_year = saved.expiry_month, saved.expiry_year
    method.card_type = saved.card_type
    session.flush()
    moved = session.execute(
        update(AutopaySetting)
        .where(AutopaySetting.id == setting.id, AutopaySetting.status == "pending")
        .values(status="active", method_id=method.id, failures=0,
                updated_at=dt.datetime.now(dt.timezone.utc))
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if moved:
        audit.record(session, "autopay.enabled", actor_id=setting.user_id,
                     object_type="autopay", object_id=setting.id,
                     details={"account_id": setting.account_id, "gateway": order.gateway,
                              "card": method.card_last4, "order_key": order.order_key})
    return bool(moved)


def forget(session: Session, method: SavedPaymentMethod) -> list[int]:
    """Delete the saved card; every autopay it paid goes off. Returns those settings' ids."""
    settings = list(session.execute(
        update(AutopaySetting).where(AutopaySetting.method_id == method.id)
        .values(status="off", method_id=None, updated_at=dt.datetime.now(dt.timezone.utc))
        .returning(AutopaySetting.id).execution_options(synchronize_session=False)).scalars())
    session.delete(method)
    session.commit()
    return settings
