"""The Celery worker's entry point: ``celery -A app.worker worker`` (CELERY_BROKER_URL set).

It builds the portal like the web process does, so tasks run inside the same app context, with
the same configuration, database and plugins. Celery looks up the ``celery`` attribute."""
from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
