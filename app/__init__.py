"""The application factory."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from config import Config

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


class DatabaseIntConverter(IntegerConverter):
    """``<int:...>`` in every route matches only ids a database column can hold (1 to
    2**31 - 1): a larger number is a 404 like any unknown id, not a PostgreSQL error."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(test_config: dict[str, Any] | object | None = None) -> Flask:
    """Build the portal: configuration, extensions, plugins, AppBuilder and every view."""
    from app import (
        assets,
        cli,
        headers,
        jobs,
        plugins,
        production,
        replica,
        tasks,  # noqa: F401  (defines the Celery tasks app.services.dispatch names)
    )
    from app.extensions import (
        commit_read_only_requests,
        csrf,
        db,
        mail,
        migrate,
        read_without_a_transaction,
        tune_sqlite,
    )
    from app.services import acts, channels, histories, payments, signin_guard, throttle
    from app.views import (
        VIEW_MENUS,
        business_acts,
        errors,
        formats,
        guards,
        navigation,
        register_all,
    )
    from app.views import auth as auth_views
    from app.views import dev as dev_views
    from app.views.access import build_fab_roles
    from app.views.api import register_api
    from app.views.applications import ApplicationView
    from app.views.autopay import AutopayView
    from app.views.bills import BillView
    from app.views.business import BusinessView
    from app.views.cabinet import CabinetView
    from app.views.consumption import ConsumptionView
    from app.views.contacts import ContactsView
    from app.views.feedback import PublicFeedbackView, ResidentFeedbackView
    from app.views.payments import PayView
    from app.views.profile import ProfileView
    from app.views.readings import GuestReadingView
    from app.views.resident import RESIDENT_VIEWS
    from app.views.unsubscribe import UnsubscribeView

    app = Flask(__name__, instance_path=Config().INSTANCE_DIR, instance_relative_config=True)
    app.url_map.converters["int"] = DatabaseIntConverter
    app.config.from_object(Config())
    if isinstance(test_config, dict):
        app.config.update(test_config)
    elif test_config is not None:
        app.config.from_object(test_config)
    if not app.testing:
        production.check(app.config, debug=app.debug)
    app.config["FAB_ROLES"] = build_fab_roles(VIEW_MENUS)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,
                                x_host=proxies, x_prefix=proxies)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO if not app.testing else logging.WARNING)
    logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)

    replica.init_app(app)  # before the engines are made: it adds the replica's bind
    db.init_app(app)
    headers.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    jobs.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)
        commit_read_only_requests(app, db.engine)
        read_without_a_transaction(app, db.engine)
        plugins.init_app(app)
        channels.init_app(app)
        throttle.init_app(app)
        signin_guard.init_app(app)
        # The plugins' offers checked at start: a payment gateway configured but not offered,
        # or an act format offered twice, stops the portal here, not at the first use.
        payments.init_app(app)
        acts.init_app(app)
        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        errors.init_app(app)  # the error pages in Russian
        guards.init_app(app)  # malformed requests refused before any view
        register_all(appbuilder)
        auth_views.register(appbuilder)
        dev_views.register(appbuilder)
        appbuilder.add_view_no_menu(CabinetView)
        appbuilder.add_view_no_menu(PayView)
        appbuilder.add_view_no_menu(AutopayView)
        appbuilder.add_view_no_menu(BillView)
        appbuilder.add_view_no_menu(ApplicationView)
        appbuilder.add_view_no_menu(ProfileView)
        appbuilder.add_view_no_menu(GuestReadingView)
        appbuilder.add_view_no_menu(PublicFeedbackView)
        appbuilder.add_view_no_menu(ResidentFeedbackView)
        appbuilder.add_view_no_menu(ContactsView)
        appbuilder.add_view_no_menu(UnsubscribeView)
        for view in RESIDENT_VIEWS:
            appbuilder.add_view_no_menu(view)
        appbuilder.add_view_no_menu(ConsumptionView)
        appbuilder.add_view_no_menu(BusinessView)
        business_acts.register(appbuilder)
        register_api(appbuilder)
        app.extensions["plugins"].hook.register_views(appbuilder=appbuilder)
    for name in ("money", "rubles", "energy", "tariff", "date", "month", "timestamp", "phone"):
        app.add_template_filter(getattr(formats, name), name)
    app.jinja_env.globals["has_endpoint"] = lambda endpoint: endpoint in app.view_functions
    app.jinja_env.globals["navigation"] = navigation.items
    app.add_template_filter(histories.range_name, "consumption_range")
    app.add_template_filter(histories.meter_kind, "meter_kind")
    assets.init_app(app)
    cli.init_app(app)
    return app
