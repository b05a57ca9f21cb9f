"""Read-only pages from a PostgreSQL streaming replica (``DATABASE_REPLICA_URL``).

The replica is Flask-SQLAlchemy's bind ``replica``; the session class (``RoutingSession``,
SQLAlchemy's documented ``get_bind`` override) sends a request's reads there when the request
is a GET of a view marked ``reads_only`` (app.extensions), and everything else to the primary:
any other request, any flush, INSERT/UPDATE/DELETE, SELECT ... FOR UPDATE, work outside a
request (CLI, background jobs). Two exceptions keep pages right despite replication lag:

- read-your-writes: a request that committed a write (a POST, PUT, PATCH or DELETE, the
  sign-in among them) leaves a short cookie, and that browser's reads go to the primary for
  the next ``REPLICA_STICKY_SECONDS``, so a person sees their own reading or payment at once;
  so do the API's requests with a token issued that recently (the app just signed in);
- a replica behind by more than ``REPLICA_MAX_LAG_SECONDS``, or one that does not answer, is
  not used: reads go to the primary and a warning is logged at most once a minute. The lag is
  measured on the replica every ``REPLICA_CHECK_SECONDS`` by one query, not per request.

The sign-in check of every request (app.security) is marked ON_PRIMARY: a sign-out, an ended
sign-in or a new password closes the session at once, not once the replica catches up.

Unset ``DATABASE_REPLICA_URL``: no second engine, no cookie, every query on the primary."""
from __future__ import annotations

import logging
import math
import threading
import time

import jwt
from flask import current_app, has_request_context, request
from flask_sqlalchemy.session import Session
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause

log = logging.getLogger(__name__)

#: Flask-SQLAlchemy's bind key of the replica's engine.
BIND = "replica"
#: The read-your-writes cookie: until when (Unix time) this browser reads from the primary.
COOKIE = "lk_primary"
#: Methods whose requests may read from the replica; the others write and make reads sticky.
READ_METHODS = frozenset({"GET", "HEAD"})
#: A replica's trouble is logged at most this often (seconds) per process.
WARN_EVERY = 60.0
#: Seconds to wait for the replica's connection before taking it as not answering.
CONNECT_TIMEOUT = 3

#: A statement's execution option that keeps it on the primary whatever the request: the
#: sign-in check (app.security), so that a sign-out or a new password ends a session at once,
#: not once the replica has replayed it.
ON_PRIMARY = "lk_on_primary"

_ROUTE = "app.replica.route"  # request.environ: the engine this request reads from, or None
_WROTE = "app.replica.wrote"  # request.environ: the request committed a transaction

#: The replica's lag in seconds: 0 when it has replayed all it received and is streaming
#: (an idle primary sends nothing, and that is no lag); else the age of the last transaction
#: it replayed; NULL when it cannot tell (nothing replayed since it started). After a long
#: idle spell the first new transaction looks as old as the spell for the moment its replay
#: takes: at worst one check interval of reads on the primary, never a stale page.
LAG = text("""
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()
                 AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
       END AS lag
""")


class RoutingSession(Session):
    """Flask-SQLAlchemy's session that reads from the replica where the request allows it."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.bind is None and not self._flushing and not _writes(clause):
            replica = _request_replica(self._db)
            if replica is not None:
                return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


@event.listens_for(RoutingSession, "after_commit")
def _note_commit(_session) -> None:
    """A commit inside a writing request makes the browser's next reads sticky."""
    if has_request_context() and request.method not in READ_METHODS:
        request.environ[_WROTE] = True


def _writes(clause) -> bool:
    """Whether a statement must run on the primary: DML, a locking SELECT, raw SQL that is
    not a plain SELECT, or a statement marked ON_PRIMARY."""
    if isinstance(clause, UpdateBase):
        return True
    if clause is not None and clause.get_execution_options().get(ON_PRIMARY):
        return True
    if isinstance(clause, TextClause):
        return clause.text.lstrip()[:6].upper() != "SELECT"
    return getattr(clause, "_for_update_arg", None) is not None


def _request_replica(db):
    """The replica's engine when this request reads from it, else None; chosen once per
    request (the first query asks) and kept in its environ."""
    if not has_request_context():
        return None
    environ = request.environ
    if _ROUTE not in environ:
        environ[_ROUTE] = _choose(db)
    return environ[_ROUTE]


def _choose(db):
    monitor = current_app.extensions.get(BIND)
    if monitor is None or request.method not in READ_METHODS:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "reads_only", False) or _sticky(current_app.config):
        return None
    engine = db.engines[BIND]
    return engine if monitor.usable(engine, current_app.config) else None


def _sticky(config) -> bool:
    """Whether this client wrote within REPLICA_STICKY_SECONDS: the cookie says so (a value
    further ahead than that was not set by us and is ignored), or the API token was issued
    since (the app just signed in or refreshed; its HTTP client may keep no cookies)."""
    seconds, now = float(config["REPLICA_STICKY_SECONDS"]), time.time()
    try:
        until = float(request.cookies.get(COOKIE, ""))
    except ValueError:
        until = 0.0
    return now < until <= now + seconds or now - seconds < _token_issued() <= now + seconds


def _token_issued() -> float:
    """When the request's bearer token was issued (its ``iat``), 0 without one. Read without
    checking the signature: it only chooses the server to read from; the API checks the
    token as always."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return 0.0
    try:
        return float(jwt.decode(token, options={"verify_signature": False}).get("iat", 0))
    except (jwt.PyJWTError, TypeError, ValueError):
        return 0.0


class Monitor:
    """Whether the replica may serve reads: measured at most once a REPLICA_CHECK_SECONDS per
    process, by one thread while the others go on with the last answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._usable = False
        self._warned: dict[str, float] = {}
        self._engine = None

    def usable(self, engine, config) -> bool:
        if engine is not self._engine:
            self._engine = engine
            event.listen(engine, "handle_error", self._failed)
        if time.monotonic() - self._checked < float(config["REPLICA_CHECK_SECONDS"]):
            return self._usable
        if not self._lock.acquire(blocking=False):
            return self._usable
        try:
            self._usable = self._measure(engine, float(config["REPLICA_MAX_LAG_SECONDS"]))
            self._checked = time.monotonic()
        finally:
            self._lock.release()
        return self._usable

    def _measure(self, engine, max_lag: float) -> bool:
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                row = conn.execute(LAG).one()
        except Exception as exc:  # any failure means: read from the primary
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return self._refuse(engine, "answer", f"does not answer ({first_line})")
        if not row.standby:
            return self._refuse(engine, "standby", "is not a standby")
        if row.lag is None:
            return self._refuse(engine, "lag", "cannot tell its lag")
        if float(row.lag) > max_lag:
            return self._refuse(engine, "lag", f"is behind by {float(row.lag):.1f} s "
                                               f"(limit {max_lag:g} s)")
        return True

    def _failed(self, context) -> None:
        """A query on the replica lost its connection: stop reading from it until the next
        measurement says it is back, instead of failing request after request."""
        if context.is_disconnect:
            self._usable = False
            self._checked = time.monotonic()

    def _refuse(self, engine, kind: str, reason: str) -> bool:
        """Log why the replica is not used, each kind of trouble at most once a WARN_EVERY;
        answer False."""
        now = time.monotonic()
        if now - self._warned.get(kind, -math.inf) >= WARN_EVERY:
            self._warned[kind] = now
            log.warning("replica %s %s: reading from the primary", engine.url, reason)
        return False


def init_app(app) -> None:
    """Add the replica's bind and the read-your-writes cookie when DATABASE_REPLICA_URL is
    set. Called before db.init_app, which makes the bind's engine."""
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    primary = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    replica = make_url(url)
    if primary.get_backend_name() != "postgresql" or replica.get_backend_name() != "postgresql":
        raise RuntimeError("DATABASE_REPLICA_URL needs PostgreSQL for both DATABASE_URL and "
                           "the replica (a streaming replica of the primary)")
    options = {**app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "url": url}
    if "connect_timeout" not in replica.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT,
                                   **options.get("connect_args", {})}
    app.config["SQLALCHEMY_BINDS"] = {**(app.config.get("SQLALCHEMY_BINDS") or {}),
                                      BIND: options}
    app.extensions[BIND] = Monitor()

    @app.after_request
    def _stick_to_the_primary(response):
        if request.environ.get(_WROTE):
            seconds = float(app.config["REPLICA_STICKY_SECONDS"])
            response.set_cookie(
                COOKIE, f"{time.time() + seconds:.3f}", max_age=math.ceil(seconds),
                path=app.config.get("SESSION_COOKIE_PATH") or "/", httponly=True,
                secure=bool(app.config.get("SESSION_COOKIE_SECURE")), samesite="Lax")
        return response
