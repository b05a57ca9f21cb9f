"""Extension singletons, created once here and bound to the app in create_app()."""
from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla.base import SQLA
from flask_mail import Mail
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

db = SQLA()
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
