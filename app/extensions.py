"""Extension singletons, created once here and bound to the app in create_app()."""
from flask import request
from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla.base import SQLA
from flask_mail import Mail
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import Connection

from app.replica import RoutingSession

db = SQLA(session_options={"class_": RoutingSession})
appbuilder = AppBuilder(update_perms=False)
mail = Mail()
csrf = CSRFProtect()
migrate = Migrate()


def tune_sqlite(engine) -> None:
    """A file SQLite database in WAL mode with NORMAL sync: readers do not wait for the
    writer (web and worker processes share the file), and a commit does not wait for the
    disk, so marking each mailing message sent as it goes costs microseconds. A crash of the
    machine may lose the last commits, never corrupt the file."""
    from sqlalchemy import event

    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()


def _writes(statement: str) -> bool:
    """Whether a statement may write: anything but a SELECT (INSERT, UPDATE, DELETE, WITH,
    DDL, SAVEPOINT... all count)."""
    return statement.lstrip()[:6].upper() != "SELECT"


def commit_read_only_requests(app, engine) -> None:
    """End a request's PostgreSQL transaction that wrote nothing with COMMIT, not ROLLBACK.

    psycopg forgets its prepared statements on every ROLLBACK (an object they refer to might
    have been dropped in the transaction), and the session ends every request with one, so no
    statement was ever prepared: each request planned its queries afresh, 1.4 ms alone for the
    signed-in user's joins, ten times its execution. Committing a transaction that ran only
    SELECTs changes nothing; one that ran anything else, or a request that failed, still
    rolls back. The statements are watched at the engine, so raw SQL counts as well as the
    ORM's. Registered after the session's own teardown, so it runs before it."""
    from sqlalchemy import event

    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(conn, _cursor, statement, *_args) -> None:
        if _writes(statement):
            conn.info["wrote"] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _forget_writes(conn) -> None:
        conn.info.pop("wrote", None)

    @app.teardown_appcontext
    def _commit_if_nothing_written(error) -> None:
        if error is not None or not db.session.registry.has():
            return
        session = db.session()
        if not session.in_transaction() or session.new or session.dirty or session.deleted:
            return
        connection = session.connection()
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # no transaction to end; psycopg keeps its prepared statements then
        if not connection.info.get("wrote"):
            session.commit()


def reads_only(view):
    """Mark a view function that only reads: its GET requests run without a transaction on
    PostgreSQL (read_without_a_transaction) and, with DATABASE_REPLICA_URL, on the replica
    (app.replica). Only for views that write nothing in the request's session (an audit
    record, a «seen» mark...). Put it next to ``def``, under the decorators that copy a
    function's attributes to their wrapper (functools.wraps)."""
    view.reads_only = True
    return view


def read_without_a_transaction(app, engine) -> None:
    """Run the GET requests of the views marked ``reads_only`` on PostgreSQL without a
    transaction (autocommit): the BEGIN and COMMIT around their queries are two round trips
    to the server, as many as the queries themselves, and buy nothing: under READ COMMITTED
    each statement sees its own snapshot inside a transaction too. Registered first among
    the request hooks, before anything reads."""
    if engine.dialect.name != "postgresql":
        return

    def _autocommit() -> None:
        if request.method != "GET" or not getattr(
                app.view_functions.get(request.endpoint), "reads_only", False):
            return
        session = db.session()
        # A session that has begun, or that was handed a connection (a test's outer
        # transaction), runs where it is.
        if not session.in_transaction() and not isinstance(session.get_bind(), Connection):
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    app.before_request_funcs.setdefault(None, []).insert(0, _autocommit)
