"""One-time codes: hashing, expiry, attempts, cooldown, hourly and per-IP limits."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.models import OtpChallenge
from app.services import otp

KEY = "test-otp-key"
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)


class Outbox:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def __call__(self, destination: str, code: str) -> None:
        self.sent.append((destination, code))

    @property
    def last_code(self) -> str:
        return self.sent[-1][1]


def issue(session, outbox, destination="+79181234567", *, now=T0, ip="10.0.0.1",
          purpose="register"):
    return otp.issue_code(session, key=KEY, purpose=purpose, channel="sms",
                          destination=destination, send=outbox, ip=ip, now=now)


def verify(session, code, destination="+79181234567", *, now=T0, purpose="register"):
    return otp.verify_code(session, key=KEY, purpose=purpose, destination=destination,
                           code=code, now=now)


def test_code_is_six_digits_and_stored_only_as_hash(session):
    outbox = Outbox()
    issue(session, outbox)
    code = outbox.last_code
    assert len(code) == 6 and code.isdigit()
    row = session.execute(select(OtpChallenge)).scalar_one()
    stored = " ".join(str(v) for v in row.__dict__.values())
    assert code not in stored
    assert "+79181234567" not in stored and "9181234567" not in stored
    assert len(row.code_hash) == 64


def test_right_code_is_accepted_once(session):
    outbox = Outbox()
    issue(session, outbox)
    challenge = verify(session, outbox.last_code, now=T0 + dt.timedelta(minutes=1))
    assert challenge.consumed_at is not None
    with pytest.raises(otp.CodeRejected):
        verify(session, outbox.last_code, now=T0 + dt.timedelta(minutes=2))


def test_code_expires_after_ten_minutes(session):
    outbox = Outbox()
    issue(session, outbox)
    with pytest.raises(otp.CodeRejected, match="истёк"):
        verify(session, outbox.last_code, now=T0 + dt.timedelta(minutes=10, seconds=1))


def test_code_valid_just_before_expiry(session):
    outbox = Outbox()
    issue(session, outbox)
    verify(session, outbox.last_code, now=T0 + dt.timedelta(minutes=9, seconds=59))


def test_code_is_bound_to_purpose_and_destination(session):
    outbox = Outbox()
    issue(session, outbox)
    with pytest.raises(otp.CodeRejected):
        verify(session, outbox.last_code, purpose="recover")
    with pytest.raises(otp.CodeRejected):
        verify(session, outbox.last_code, destination="+79181234568")


def test_five_wrong_tries_kill_the_code(session):
    outbox = Outbox()
    issue(session, outbox)
    wrong = "000000" if outbox.last_code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(otp.CodeRejected, match=f"Осталось попыток: {left}"):
            verify(session, wrong)
    with pytest.raises(otp.CodeRejected, match="Превышено"):
        verify(session, wrong)
    with pytest.raises(otp.CodeRejected, match="Превышено"):
        verify(session, outbox.last_code)


def test_resend_cooldown_is_sixty_seconds(session):
    outbox = Outbox()
    issue(session, outbox)
    with pytest.raises(otp.RetryLater) as err:
        issue(session, outbox, now=T0 + dt.timedelta(seconds=45))
    assert "15 с" in str(err.value)
    assert err.value.retry_after == dt.timedelta(seconds=15)
    issue(session, outbox, now=T0 + dt.timedelta(seconds=61))
    assert len(outbox.sent) == 2


def test_cooldown_is_per_flow_but_the_hourly_cap_is_per_destination(session):
    outbox = Outbox()
    issue(session, outbox)
    issue(session, outbox, purpose="recover", now=T0 + dt.timedelta(seconds=5))
    assert len(outbox.sent) == 2
    for minutes in (2, 4, 6):
        issue(session, outbox, purpose="recover" if minutes % 4 else "register",
              now=T0 + dt.timedelta(minutes=minutes))
    with pytest.raises(otp.RetryLater, match="Слишком много кодов за час"):
        issue(session, outbox, purpose="recover", now=T0 + dt.timedelta(minutes=8))


def test_newest_code_wins_after_resend(session):
    outbox = Outbox()
    issue(session, outbox)
    first = outbox.last_code
    issue(session, outbox, now=T0 + dt.timedelta(seconds=61))
    second = outbox.last_code
    if first != second:
        with pytest.raises(otp.CodeRejected):
            verify(session, first, now=T0 + dt.timedelta(seconds=70))
    verify(session, second, now=T0 + dt.timedelta(seconds=71))


def test_five_codes_per_destination_per_hour(session):
    outbox = Outbox()
    for i in range(5):
        issue(session, outbox, now=T0 + dt.timedelta(minutes=2 * i))
    with pytest.raises(otp.RetryLater, match="Слишком много кодов за час") as err:
        issue(session, outbox, now=T0 + dt.timedelta(minutes=12))
    assert err.value.retry_after == dt.timedelta(minutes=48)
    issue(session, outbox, now=T0 + dt.timedelta(minutes=60, seconds=1))
    assert len(outbox.sent) == 6


def test_per_ip_limit_across_destinations(session):
    outbox = Outbox()
    for i in range(otp.PER_IP_PER_HOUR):
        issue(session, outbox, destination=f"user{i}@example.test",
              now=T0 + dt.timedelta(seconds=i))
    with pytest.raises(otp.RetryLater, match="с вашего адреса"):
        issue(session, outbox, destination="other@example.test",
              now=T0 + dt.timedelta(minutes=5))
    issue(session, outbox, destination="other@example.test", ip="10.0.0.2",
          now=T0 + dt.timedelta(minutes=5))


def test_failed_delivery_leaves_nothing(session):
    def broken(destination, code):
        raise RuntimeError("SMS gateway down")

    with pytest.raises(RuntimeError):
        otp.issue_code(session, key=KEY, purpose="register", channel="sms",
                       destination="+79181234567", send=broken, now=T0)
    assert session.execute(select(OtpChallenge)).first() is None
    issue(session, Outbox(), now=T0 + dt.timedelta(seconds=1))


def test_silent_challenge_for_unknown_contact_counts_limits(session):
    otp.issue_code(session, key=KEY, purpose="recover", channel="sms",
                   destination="+79180000000", send=None, now=T0)
    with pytest.raises(otp.RetryLater):
        otp.issue_code(session, key=KEY, purpose="recover", channel="sms",
                       destination="+79180000000", send=None, now=T0 + dt.timedelta(seconds=5))
    with pytest.raises(otp.CodeRejected):
        verify(session, "123456", destination="+79180000000", purpose="recover")


def test_codes_are_random(session):
    codes = {otp.generate_code() for _ in range(200)}
    assert len(codes) > 190
