"""A mailing through a real Celery worker on Redis whose process is killed mid-mailing (at
an SMTP conversation, before the server accepted the message): after a restart the task is
redelivered under the same id and every recipient ends up with exactly one letter."""
from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import time
from collections import Counter

import pytest
from aiosmtpd.controller import Controller
from celery import Celery
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from app import models as m
from app.services import mailings
from tests.conftest import free_port
from tests.test_jobs import _start_worker, _stop

RESIDENTS = 40
KILL_AT = 17  # the worker dies while the 17th message is being handed over


class KillingServer:
    """Accepts every message but the ``kill_at``-th: then it kills the sending worker and
    answers 451, so that message is never accepted."""

    def __init__(self, kill_at: int):
        self.kill_at = kill_at
        self.seen = 0
        self.worker_pid: int | None = None
        self.accepted: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.seen == self.kill_at and self.worker_pid:
            os.kill(self.worker_pid, signal.SIGKILL)
            return "451 4.3.0 Interrupted"
        self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


def wait_for(condition, what: str, logs, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds} s:\n" + \
            "\n".join(log.read_text(errors="replace") for log in logs if log.exists())
        time.sleep(0.2)


@pytest.mark.redis
@pytest.mark.committed  # a worker process reads the data
def test_a_killed_worker_leaves_every_recipient_exactly_one_letter(
        app, session, two_branches, database_url, redis_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        pytest.skip("a worker process cannot share an in-memory SQLite database")
    broker = redis_url
    krd, _ = two_branches
    session.execute(insert(m.PortalUser), [
        {"username": f"resident{n}", "first_name": f"Житель{n}", "last_name": "Тестов",
         "email": f"resident{n}@example.test", "password": "not-a-login", "active": True,
         "kind": "resident"} for n in range(RESIDENTS)])
    session.flush()
    ids = session.execute(select(m.PortalUser.id).where(
        m.PortalUser.username.like("resident%"))).scalars().all()
    session.execute(insert(m.AccountBinding), [
        {"user_id": user_id, "account_id": krd.ids["PersonalAccount"]} for user_id in ids])
    letter = m.Mailing(subject="Новости", body="Здравствуйте, {{ name }}!",
                       branch_id=krd.branch_id)
    session.add(letter)
    session.commit()
    assert mailings.queue(session, letter.id, None, dt.date(2026, 10, 1)) == RESIDENTS

    server = KillingServer(KILL_AT)
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    queue = f"lk-mailing-{secrets.token_hex(4)}"
    env = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(controller.port),
           "MAILING_CHUNK": "5", "CELERY_VISIBILITY_TIMEOUT": "3"}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    client = Celery("lk-test-client", broker=broker)
    first = _start_worker(broker, database_url, queue, tmp_path, logs[0], **env)
    second = None
    try:
        server.worker_pid = first.pid
        client.send_task("lk_portal.deliver_mailing", args=[letter.id], queue=queue)
        wait_for(lambda: first.poll() is not None, "the worker's death", logs)
        assert first.returncode == -signal.SIGKILL
        assert len(server.accepted) == KILL_AT - 1

        second = _start_worker(broker, database_url, queue, tmp_path, logs[1], **env)

        def finished() -> bool:
            session.expire_all()
            return session.get(m.Mailing, letter.id).status == "done"

        wait_for(finished, "the end of the mailing", logs)
    finally:
        client.close()
        if second is not None:
            _stop(second)
        controller.stop()
    got = Counter(server.accepted)
    assert len(got) == RESIDENTS and set(got.values()) == {1}, got
    rows = session.execute(select(m.MailingRecipient.status).where(
        m.MailingRecipient.mailing_id == letter.id)).scalars().all()
    assert set(rows) == {"sent"}
    done = session.get(m.Mailing, letter.id)
    assert (done.sent, done.failed) == (RESIDENTS, 0)

