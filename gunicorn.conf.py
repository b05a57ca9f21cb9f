"""gunicorn settings of `make serve` (`gunicorn -c gunicorn.conf.py run:app`), read from the
environment so that each machine is configured the same way as the portal itself.

Workers share nothing but PostgreSQL and Redis, so any number of them, on any number of
machines, can serve behind one reverse proxy. The app is built in each worker (no
preload_app): a database pool must not be shared across fork()."""
import multiprocessing
import os

# Loopback by default: the TLS reverse proxy on the same machine is the only client.
# BIND=0.0.0.0:8000 (or a unix:/path socket) when the proxy runs elsewhere.
bind = os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# Sync workers: the portal's requests are short; twice the cores plus one is gunicorn's advice.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("WEB_THREADS") or 1)
timeout = int(os.environ.get("WEB_TIMEOUT") or 60)  # a PDF bill or an act export included
graceful_timeout = 30
keepalive = 5
# Recycle a worker now and then, so a slow leak in a library never grows without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS") or 2000)
max_requests_jitter = max_requests // 10

# The proxy's addresses, whose X-Forwarded-Proto gunicorn believes (https on wsgi.url_scheme);
# the portal's PROXY_COUNT makes werkzeug's ProxyFix read X-Forwarded-For and -Host.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = os.environ.get("WEB_ACCESS_LOG", "-")  # "-": standard output
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
# The client's address as the portal sees it (after ProxyFix), not only the proxy's.
access_log_format = '%({x-forwarded-for}i)s %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s ' \
                    '"%(f)s" "%(a)s" %(M)sms'
proc_name = "lk-portal"
# No gunicornc control socket: it would sit in $HOME, one path for every instance on the
# machine (two instances would take it from each other), and nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Refuse to start before forking any worker when the settings are not fit for production
    (app/production.py): gunicorn prints the message and exits with status 1."""
    from flask.helpers import get_debug_flag

    from app.production import check, environment_config

    check(environment_config(), debug=get_debug_flag())
