"""Benchmark of mailings: N personal messages (HTML + text, about 4 KB) to a local SMTP server.

An aiosmtpd server that discards what it gets runs in its own process. In the same run it
times

- the portal's real path: the mailing queued (recipients fixed by one INSERT ... SELECT) and
  delivered by the Celery task in-process (eager), each message built by
  app.services.mailings and marked sent in the database the moment the server accepts it;
- where Redis answers, the same through a real Celery worker process on Redis (one process),
  its broker an empty Redis database of the run's own: ``--redis-url URL`` (default
  BENCH_REDIS_URL), refused unless it is empty, else a free one of 1-15 leased
  (tests/redis_lease.py); either is flushed at the end, also on error or SIGTERM;
- the naive path: Flask-Mail building a Message for each recipient and sending all of them
  over one connection;
- the limit: smtplib sending the same number of pre-built messages over one connection;

and prints messages per second for each and, last, ``ratio mailing_vs_naive <portal / naive>``
and ``ratio mailing_vs_limit <portal / limit>`` (the in-process figure; per process). The
portal's database is SQLite, a file in a temporary folder.

    .venv/bin/python bench/mailing.py                  # 2,000 messages
    .venv/bin/python bench/mailing.py --messages 10000
    .venv/bin/python bench/mailing.py --redis-url redis://127.0.0.1:6379/11
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = dt.date(2026, 11, 1)
SUBJECT = "Плановые работы в вашем районе, {{ name }}"
#: About 2 KB of Russian text; with its HTML twin and the headers a message is about 4 KB.
BODY = ("Здравствуйте, {{ name }}!\n\n"
        "Сообщаем, что по лицевому счёту {{ account }} задолженность составляет {{ debt }} руб.\n"
        "Оплатить её можно в личном кабинете картой или через СБП, без комиссии.\n\n"
        + "В связи с плановыми работами на подстанции в вашем районе возможны отключения.\n"
          "Пожалуйста, заранее зарядите необходимые устройства.\n" * 6
        + "\nС уважением, АО «НЭСК»")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SMTP server did not start")


def portal(database_url: str, port: int, folder: Path):
    from flask_appbuilder import Model
    from sqlalchemy import create_engine

    import app.models  # noqa: F401 (the tables)
    from app import create_app

    engine = create_engine(database_url)
    Model.metadata.create_all(engine)
    engine.dispose()
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "MAIL_SERVER": "127.0.0.1",
                       "MAIL_PORT": port, "MAIL_SUPPRESS_SEND": False, "TESTING": True,
                       "RATELIMIT_ENABLED": False, "DEV_OUTBOX_DIR": str(folder / "outbox"),
                       "PORTAL_URL": "https://lk.nesk.example", "SERVER_NAME": "localhost"})


def seed(session, n: int) -> None:
    """One account with a debt, and ``n`` residents with e-mail bound to it (set-based)."""
    from sqlalchemy import insert, select

    from app import models as m

    session.add(m.Branch(id=1, code="krd", name="Краснодарэнергосбыт", city="Краснодар"))
    session.add(m.TariffGroup(id=1, code="urban", name="Городское население"))
    session.add(m.Premises(id=1, branch_id=1, locality="Краснодар", street="ул. Красная",
                           house="1"))
    session.add(m.PersonalAccount(id=1, number="230000000001", holder_name="Иванов И. И.",
                                  premises_id=1, branch_id=1, tariff_group_id=1,
                                  opened_on=dt.date(2020, 1, 1)))
    session.add(m.Charge(account_id=1, period=dt.date(2026, 10, 1), amount=Decimal("1234.56"),
                         kind="adjustment"))
    session.flush()
    session.execute(insert(m.PortalUser), [
        {"username": f"r{i}", "first_name": f"Иван{i}", "last_name": "Петрович",
         "email": f"r{i}@example.ru", "password": "x", "active": True, "kind": "resident"}
        for i in range(n)])
    ids = session.execute(select(m.PortalUser.id)).scalars().all()
    session.execute(insert(m.AccountBinding), [{"user_id": u, "account_id": 1} for u in ids])
    session.commit()


def new_mailing(session) -> int:
    from app import models as m

    row = m.Mailing(subject=SUBJECT, body=BODY, branch_id=1)
    session.add(row)
    session.commit()
    return row.id


def run_portal_eager(app, n: int) -> float:
    from app.extensions import db
    from app.services import mailings
    from app.tasks import deliver_mailing

    with app.app_context():
        mailing_id = new_mailing(db.session)
        started = time.perf_counter()
        total = mailings.queue(db.session, mailing_id, None, PERIOD)
        deliver_mailing.delay(mailing_id)
        elapsed = time.perf_counter() - started
        from app import models as m

        db.session.expire_all()
        done = db.session.get(m.Mailing, mailing_id)
        assert (total, done.status, done.sent) == (n, "done", n), (total, done.status, done.sent)
    return elapsed


def run_portal_worker(app, broker_url: str | None, database_url: str, port: int, n: int,
                      folder: Path) -> float | None:
    if broker_url is None:
        print("  Redis worker: skipped (Redis does not answer, or no database 1-15 is free)")
        return None
    from celery import Celery

    from app import models as m
    from app.extensions import db
    from app.services import mailings

    queue = f"bench-{secrets.token_hex(4)}"
    env = {**os.environ, "CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": broker_url,
           "DATABASE_URL": database_url, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(port),
           "PORTAL_URL": "https://lk.nesk.example", "SECRET_KEY": secrets.token_hex(16),
           "OTP_HASH_KEY": secrets.token_hex(16), "DEV_OUTBOX_DIR": str(folder / "outbox"),
           "INSTANCE_PATH": str(folder / "worker")}
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "app.worker", "worker",
         "--pool=solo", "-c", "1", "-Q", queue, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel=WARNING"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    sender = Celery("bench", broker=broker_url)
    try:
        with app.app_context():
            sender.send_task("lk_portal.ping_database", queue=queue)  # the worker is warm
            time.sleep(5)
            mailing_id = new_mailing(db.session)
            started = time.perf_counter()
            mailings.queue(db.session, mailing_id, None, PERIOD)
            sender.send_task("lk_portal.deliver_mailing", args=[mailing_id], queue=queue)
            deadline = time.monotonic() + 600
            while True:
                db.session.expire_all()
                if db.session.get(m.Mailing, mailing_id).status == "done":
                    break
                if worker.poll() is not None or time.monotonic() > deadline:
                    print("  Redis worker: did not finish (see worker.log)")
                    return None
                time.sleep(0.05)
            return time.perf_counter() - started
    finally:
        sender.close()
        worker.terminate()
        worker.wait(timeout=30)


def letters(n: int) -> list[tuple[str, str, str, str]]:
    """(address, subject, text, html) per recipient, rendered as the portal renders them."""

    from app.services.mailing_letters import Composer, _html_page

    class Row:
        id, subject, body = 0, SUBJECT, BODY

    composer = Composer(Row(), "НЭСК <noreply@nesk.example>", lambda _u: "", "nesk.example")
    out = []
    for i in range(n):
        letter = composer.letter(f"Иван{i} Петрович", "230000000001", Decimal("1234.56"))
        out.append((f"r{i}@example.ru", letter.subject, letter.text,
                    _html_page(letter.text, f"https://lk.nesk.example/unsubscribe/{i}")))
    return out


def run_naive(app, port: int, n: int) -> float:
    """Flask-Mail, one connection, a Message per recipient (its rendering included)."""
    from flask_mail import Message

    from app.extensions import mail

    with app.app_context():
        started = time.perf_counter()
        with mail.connect() as connection:
            for address, subject, text, page in letters(n):
                connection.send(Message(subject=subject, recipients=[address], body=text,
                                        html=page, sender="НЭСК <noreply@nesk.example>"))
        return time.perf_counter() - started


def run_limit(port: int, n: int) -> float:
    """smtplib, one connection, the same number of messages built beforehand."""
    from email import policy
    from email.message import EmailMessage

    built = []
    for address, subject, text, page in letters(n):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            "НЭСК <noreply@nesk.example>", address, subject)
        message.set_content(text, cte="base64")
        message.add_alternative(page, subtype="html", cte="base64")
        built.append((address, message.as_bytes(policy=policy.SMTP)))
    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for address, data in built:
        smtp.sendmail("noreply@nesk.example", [address], data)
    smtp.quit()
    return time.perf_counter() - started


def main() -> None:
    from bench import databases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--redis-url", default=databases.REDIS_URL,
                        help="an empty Redis database for the worker's broker, flushed at the "
                             "end (default: BENCH_REDIS_URL, else a free one of 1-15 leased)")
    args = parser.parse_args()
    n = args.messages
    with databases.redis_database(args.redis_url) as broker_url:
        smtp, port = start_smtp()
        try:
            with tempfile.TemporaryDirectory(prefix="lk-bench-mailing-") as tmp:
                folder = Path(tmp)
                database_url = f"sqlite:///{folder / 'bench.sqlite3'}"
                app = portal(database_url, port, folder)
                from app.extensions import db

                with app.app_context():
                    seed(db.session, n)
                size = len(letters(1)[0][2].encode()) + len(letters(1)[0][3].encode())
                print(f"{n:,} messages of about {size / 1024:.1f} KB (text + HTML) "
                      f"to aiosmtpd on 127.0.0.1:{port}")
                limit = run_limit(port, n)
                print(f"  limit (smtplib, pre-built bytes, one connection): {limit:.2f} s, "
                      f"{n / limit:,.0f} messages/s")
                naive = run_naive(app, port, n)
                print(f"  naive (Flask-Mail, one connection): {naive:.2f} s, "
                      f"{n / naive:,.0f} messages/s")
                eager = run_portal_eager(app, n)
                print(f"  portal, Celery in-process: {eager:.2f} s, {n / eager:,.0f} messages/s "
                      f"(queued, built, sent and marked sent one by one)")
                worker = run_portal_worker(app, broker_url, database_url, port, n, folder)
                if worker is not None:
                    print(f"  portal, a Celery worker on Redis: {worker:.2f} s, "
                          f"{n / worker:,.0f} messages/s")
        finally:
            smtp.terminate()
            smtp.wait(timeout=10)
    print(f"ratio mailing_vs_naive {naive / eager:.3f}")
    print(f"ratio mailing_vs_limit {limit / eager:.3f}")


if __name__ == "__main__":
    main()
