"""Portal configuration: documented defaults, overridden by the environment (and a .env file).

Every setting below can be set as an environment variable of the same name. Secrets are never
constants: SECRET_KEY and OTP_HASH_KEY are generated once and kept in instance/ when not given.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_ROOT = Path(os.environ.get("INSTANCE_PATH") or BASE_DIR / "instance")

load_dotenv(BASE_DIR / ".env")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str, default: bool = False) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def instance_secret(name: str) -> str:
    """Return a secret from the environment, else one generated once and kept in instance/."""
    value = _env(name)
    if value:
        return value
    INSTANCE_ROOT.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_ROOT / name.lower()
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def instance_vapid_key() -> str:
    """The VAPID private key of Web Push (base64url of the raw P-256 key, as web-push tools
    print it): from the environment, else generated once into instance/vapid_private_key."""
    value = _env("VAPID_PRIVATE_KEY")
    if value:
        return value
    INSTANCE_ROOT.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_ROOT / "vapid_private_key"
    if not path.exists():
        import base64

        from cryptography.hazmat.primitives.asymmetric import ec

        raw = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        key = base64.urlsafe_b64encode(raw.to_bytes(32, "big")).rstrip(b"=")
        try:  # created with mode 0600; a process starting alongside keeps the first key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(key)
    return path.read_text().strip()


class Config:
    """Defaults of the embedded setup: SQLite, in-process jobs, mail and SMS to a dev outbox."""

    APP_NAME = "НЭСК — личный кабинет"
    APP_THEME = ""
    INSTANCE_DIR = str(INSTANCE_ROOT)

    # Database
    SQLALCHEMY_DATABASE_URI = _env(
        "DATABASE_URL", f"sqlite:///{INSTANCE_ROOT / 'portal.sqlite3'}"
    )
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    # A streaming replica for the GET requests of read-only pages (app/replica.py); unset:
    # every query on the primary. A browser that wrote reads from the primary for the sticky
    # seconds; a replica further behind than the lag limit (measured once a check interval)
    # or not answering is not used.
    DATABASE_REPLICA_URL = _env("DATABASE_REPLICA_URL")
    REPLICA_STICKY_SECONDS = float(_env("REPLICA_STICKY_SECONDS", "10"))
    REPLICA_MAX_LAG_SECONDS = float(_env("REPLICA_MAX_LAG_SECONDS", "30"))
    REPLICA_CHECK_SECONDS = float(_env("REPLICA_CHECK_SECONDS", "5"))

    # Flask-AppBuilder
    FAB_SECURITY_MANAGER_CLASS = "app.security.PortalSecurityManager"
    FAB_UPDATE_PERMS = _flag("FAB_UPDATE_PERMS", False)
    FAB_CREATE_DB = False
    # Off: FAB's user/role/permission CRUD APIs (not the JWT login, which is always on) are
    # not used, and FAB 5.3 cannot build them with marshmallow 4 (docs/api.md).
    FAB_ADD_SECURITY_API = False
    FAB_API_SWAGGER_UI = True
    FAB_INDEX_VIEW = "app.views.index.PortalIndexView"
    FAB_BASE_TEMPLATE = "portal/baselayout.html"
    AUTH_TYPE = 1  # AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False
    AUTH_RATE_LIMITED = True
    AUTH_RATE_LIMIT = _env("AUTH_RATE_LIMIT", "10 per 5 minute")
    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", _env("REDIS_URL") or "memory://")
    # Tries of the first «не робот» proof of work an account under attack asks for
    # (app/services/signin_guard.py); it doubles as failures grow.
    SIGNIN_CHALLENGE_WORK = int(_env("SIGNIN_CHALLENGE_WORK", "1000"))
    FAB_PASSWORD_COMPLEXITY_ENABLED = False
    PAGE_SIZE = 25

    # Language
    BABEL_DEFAULT_LOCALE = "ru"
    BABEL_DEFAULT_TIMEZONE = "Europe/Moscow"
    LANGUAGES = {"ru": {"flag": "ru", "name": "Русский"}}

    # Production (app/production.py checks it at start-up): PRODUCTION refuses development
    # stand-ins, keys not from the environment, SQLite, and rate limits or jobs kept in one
    # process; DEMO admits the last three for a demonstration and does not force HTTPS.
    PRODUCTION = _flag("PRODUCTION")
    DEMO = _flag("DEMO")

    # Sessions and cookies: Secure by default in production (behind TLS)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    REMEMBER_COOKIE_DURATION = timedelta(days=30)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = _flag("SECURE_COOKIES", PRODUCTION and not DEMO)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _flag("SECURE_COOKIES", PRODUCTION and not DEMO)
    # Flask-Login's "basic" protection only marks a session not fresh, which no view asks
    # for; its write into a visitor's session made any request in flight during sign-in
    # (the service worker's /sw.js) answer with the old cookie and sign the person out.
    SESSION_PROTECTION = None
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None

    # HTTP security headers (app/headers.py). FORCE_HTTPS redirects plain HTTP to HTTPS;
    # HSTS is sent only on HTTPS requests (directly or X-Forwarded-Proto from the proxy).
    FORCE_HTTPS = _flag("FORCE_HTTPS", PRODUCTION and not DEMO)
    HSTS_MAX_AGE = int(_env("HSTS_MAX_AGE", "31536000"))  # seconds; 0: no HSTS header
    # Reverse proxies in front of the portal whose X-Forwarded-For/-Proto/-Host/-Prefix are
    # believed (werkzeug's ProxyFix); 0: none, the headers are ignored.
    PROXY_COUNT = int(_env("PROXY_COUNT", "0"))

    # Mail (Flask-Mail's standard keys); without MAIL_SERVER mail goes to the dev outbox
    MAIL_SERVER = _env("MAIL_SERVER")
    MAIL_PORT = int(_env("MAIL_PORT", "25"))
    MAIL_USE_TLS = _flag("MAIL_USE_TLS")
    MAIL_USE_SSL = _flag("MAIL_USE_SSL")
    MAIL_USERNAME = _env("MAIL_USERNAME")
    MAIL_PASSWORD = _env("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = _env("MAIL_DEFAULT_SENDER", "НЭСК <noreply@nesk.example>")
    MAIL_SUPPRESS_SEND = False  # tests talk to a real SMTP server (aiosmtpd) instead
    # Production refuses development stand-ins (the dev outbox) instead of silently using them,
    # unless DEV_OUTBOX_ENABLED says so explicitly (a staging stand or a test of the setup).
    DEV_OUTBOX_ENABLED = _flag("DEV_OUTBOX_ENABLED")
    DEV_OUTBOX_DIR = _env("DEV_OUTBOX_DIR", str(INSTANCE_ROOT / "outbox"))
    # Channel names offered by plugins; unset: the real one when configured, else the outbox.
    OTP_SMS_CHANNEL = _env("OTP_SMS_CHANNEL")
    OTP_EMAIL_CHANNEL = _env("OTP_EMAIL_CHANNEL")
    NOTIFY_SMS_CHANNEL = _env("NOTIFY_SMS_CHANNEL")
    NOTIFY_EMAIL_CHANNEL = _env("NOTIFY_EMAIL_CHANNEL")
    # Web Push (app/plugins/web_push.py). VAPID_PRIVATE_KEY is set in __init__; the public
    # key is derived from it when unset; the subject is the contact push services may write
    # to (mailto: or https:), unset: mailto:SUPPLIER_EMAIL.
    VAPID_PUBLIC_KEY = _env("VAPID_PUBLIC_KEY")
    VAPID_SUBJECT = _env("VAPID_SUBJECT")

    # SMS through the installable SMS.ru plugin (plugins/sms_ru); without a key, no SMS channel
    SMS_RU_API_ID = _env("SMS_RU_API_ID")
    SMS_RU_URL = _env("SMS_RU_URL", "https://sms.ru")
    SMS_RU_FROM = _env("SMS_RU_FROM")
    SMS_RU_TIMEOUT = float(_env("SMS_RU_TIMEOUT", "10"))

    # The Telegram bot (plugins/telegram_bot); without a token, no bot. The webhook's secret
    # is checked on every update (header X-Telegram-Bot-Api-Secret-Token).
    TELEGRAM_BOT_TOKEN = _env("TELEGRAM_BOT_TOKEN")
    TELEGRAM_WEBHOOK_SECRET = _env("TELEGRAM_WEBHOOK_SECRET")
    TELEGRAM_BOT_USERNAME = _env("TELEGRAM_BOT_USERNAME")
    TELEGRAM_API_URL = _env("TELEGRAM_API_URL", "https://api.telegram.org")
    TELEGRAM_TIMEOUT = float(_env("TELEGRAM_TIMEOUT", "10"))
    # The bot without Telegram, for development: a loopback Bot API in the process and a chat
    # with the bot at /dev/telegram. Unset: on outside production and the tests when no
    # TELEGRAM_BOT_TOKEN is set; production refuses it (app/production.py).
    TELEGRAM_DEV_CHAT = _env("TELEGRAM_DEV_CHAT")

    # Redis and Celery: without a broker, jobs run in-process (eager)
    REDIS_URL = _env("REDIS_URL")
    CELERY_BROKER_URL = _env("CELERY_BROKER_URL")
    CELERY_RESULT_BACKEND = _env("CELERY_RESULT_BACKEND")
    CELERY_VISIBILITY_TIMEOUT = int(_env("CELERY_VISIBILITY_TIMEOUT", "3600"))

    # Mailings (рассылки)
    PORTAL_URL = _env("PORTAL_URL", "http://127.0.0.1:5000")
    MAILING_TRANSPORT = _env("MAILING_TRANSPORT")
    MAILING_CHUNK = int(_env("MAILING_CHUNK", "200"))
    MAILING_MAX_ATTEMPTS = int(_env("MAILING_MAX_ATTEMPTS", "5"))
    MAILING_RETRY_BACKOFF = float(_env("MAILING_RETRY_BACKOFF", "30"))
    MAILING_PARALLEL = int(_env("MAILING_PARALLEL", "2"))
    MAILING_TASK_SECONDS = float(_env("MAILING_TASK_SECONDS", "300"))

    # Event notices (app/services/notice_events.py): the warning before the reading window closes,
    # the high-bill alert's ratio to the same month last year, the hour of the daily runs
    NOTICE_READING_WARNING_DAYS = int(_env("NOTICE_READING_WARNING_DAYS", "3"))
    HIGH_BILL_RATIO = Decimal(_env("HIGH_BILL_RATIO", "1.5"))
    NOTICES_HOUR = int(_env("NOTICES_HOUR", "10"))
    # Days before a meter's verification date (Meter.verification_due) that the cabinet, the
    # readings form and a notice warn: past it readings are not billed (Правила 354 п. 59-60)
    METER_VERIFICATION_WARN_DAYS = int(_env("METER_VERIFICATION_WARN_DAYS", "60"))
    # A branch with more active accounts is billed in parts, one background job each (by the
    # account id's remainder), so that the largest branch does not set the run's length
    BILLING_TASK_ACCOUNTS = int(_env("BILLING_TASK_ACCOUNTS", "500000"))

    # Plugins: comma-separated names of plugins not to load
    PLUGINS_BLOCKED = [p for p in (_env("PLUGINS_BLOCKED", "") or "").split(",") if p]

    # The supplier's requisites, printed on bills (clearly fake demo values by default)
    SUPPLIER_NAME = _env("SUPPLIER_NAME", "АО «НЭСК» (демо)")
    SUPPLIER_INN = _env("SUPPLIER_INN", "2308000000")
    SUPPLIER_KPP = _env("SUPPLIER_KPP", "230801001")
    SUPPLIER_BANK_ACCOUNT = _env("SUPPLIER_BANK_ACCOUNT", "40702810000000000000")
    SUPPLIER_BIC = _env("SUPPLIER_BIC", "040300000")
    SUPPLIER_CORR_ACCOUNT = _env("SUPPLIER_CORR_ACCOUNT", "30101810000000000000")
    SUPPLIER_BANK_NAME = _env("SUPPLIER_BANK_NAME", "ДЕМО-БАНК (не для оплаты)")
    SUPPLIER_PHONE = _env("SUPPLIER_PHONE", "8-800-600-02-20")
    SUPPLIER_EMAIL = _env("SUPPLIER_EMAIL", "contact@nesk.ru")
    # The mobile app's page, shown as a QR code on the organizations' sign-in page: by default
    # the portal's own /app/ (the installable app), at the address customers reach it by.
    MOBILE_APP_URL = _env("MOBILE_APP_URL", f"{PORTAL_URL.rstrip('/')}/app/")

    # Meter reading rules (domain.md, section 5)
    READING_WINDOW_FIRST_DAY = int(_env("READING_WINDOW_FIRST_DAY", "15"))
    READING_WINDOW_LAST_DAY = int(_env("READING_WINDOW_LAST_DAY", "25"))
    ESTIMATE_BY_AVERAGE_MONTHS = int(_env("ESTIMATE_BY_AVERAGE_MONTHS", "3"))
    # Monthly consumption norm (kWh) charged when no reading comes after the average months.
    BILLING_NORM_KWH = int(_env("BILLING_NORM_KWH", "100"))
    PAYMENT_DUE_DAY = int(_env("PAYMENT_DUE_DAY", "10"))
    # An implausible reading is held «на проверке», unbilled until staff accept it
    # (app/services/reading_checks.py): a consumption above this many times the meter's average
    # month, or above connected power x 24 h x days since the previous reading. No table holds
    # a premises' own power: households are taken at 15 kW (the usual household connection),
    # organizations at 150 kW (the small-consumer connection limit) — *unconfirmed* defaults.
    READING_SPIKE_FACTOR = Decimal(_env("READING_SPIKE_FACTOR", "5"))
    READING_HOUSEHOLD_POWER_KW = Decimal(_env("READING_HOUSEHOLD_POWER_KW", "15"))
    READING_ORGANIZATION_POWER_KW = Decimal(_env("READING_ORGANIZATION_POWER_KW", "150"))
    APPLICATION_MAX_FILE_MB = int(_env("APPLICATION_MAX_FILE_MB", "5"))  # per attached scan
    APPLICATION_UPLOAD_DIR = _env("APPLICATION_UPLOAD_DIR", str(INSTANCE_ROOT / "uploads"))
    # Finished branch exports of reconciliation acts (.zip, named by a random token).
    ACT_EXPORT_DIR = _env("ACT_EXPORT_DIR", str(INSTANCE_ROOT / "act_exports"))
    ACT_EXPORT_KEEP_DAYS = int(_env("ACT_EXPORT_KEEP_DAYS", "7"))  # then the archive is deleted
    # An act of more document rows is built by a background job (app.services.act_jobs), its
    # file kept in ACT_EXPORT_DIR for ACT_EXPORT_KEEP_DAYS; smaller ones in the request.
    ACT_INLINE_ROWS_MAX = int(_env("ACT_INLINE_ROWS_MAX", "5000"))
    MAX_CONTENT_LENGTH = int(_env("MAX_CONTENT_LENGTH_MB", "30")) * 1024 * 1024  # a whole request

    # Card payments through a gateway plugin. Unset: the built-in sandbox unless PRODUCTION
    # is on (app.services.payments resolves both at start-up; production refuses the sandbox)
    PAYMENT_GATEWAY = _env("PAYMENT_GATEWAY")
    SANDBOX_PAY_ENABLED = _env("SANDBOX_PAY_ENABLED")
    SANDBOX_PAY_DIR = _env("SANDBOX_PAY_DIR", str(INSTANCE_ROOT / "sandbox_pay"))
    PAYMENT_VAT_CODE = int(_env("PAYMENT_VAT_CODE", "11"))  # 54-FZ: 11 = VAT 22% (from 2026)
    PAYMENT_TAX_SYSTEM_CODE = _env("PAYMENT_TAX_SYSTEM_CODE", "1")  # 54-FZ: 1 = ОСН
    # Autopay from a saved card (app/services/autopay.py): charged this many days before a
    # bill's due date, by the daily run at AUTOPAY_HOUR (local); a refused charge is tried
    # again on later days, at most AUTOPAY_MAX_ATTEMPTS times a bill in all
    AUTOPAY_DAYS_BEFORE_DUE = int(_env("AUTOPAY_DAYS_BEFORE_DUE", "1"))
    AUTOPAY_MAX_ATTEMPTS = int(_env("AUTOPAY_MAX_ATTEMPTS", "3"))
    AUTOPAY_HOUR = int(_env("AUTOPAY_HOUR", "9"))

    def __init__(self) -> None:
        # In production the keys every web process must share come from the environment
        # only: a key generated into one machine's instance/ would differ on the next one.
        if self.PRODUCTION:
            self.SECRET_KEY = _env("SECRET_KEY")
            self.OTP_HASH_KEY = _env("OTP_HASH_KEY")
        else:
            self.SECRET_KEY = instance_secret("SECRET_KEY")
            self.OTP_HASH_KEY = instance_secret("OTP_HASH_KEY")
        # Web Push's signing key likewise; a demonstration (DEMO) runs on one machine, whose
        # generated key every process shares.
        self.VAPID_PRIVATE_KEY = (_env("VAPID_PRIVATE_KEY") if self.PRODUCTION and not self.DEMO
                                  else instance_vapid_key())
        self.SANDBOX_PAY_SECRET = instance_secret("SANDBOX_PAY_SECRET")


class TestConfig(Config):
    """Settings for the test suite: a throwaway database, no CSRF on the plain test client."""

    TESTING = True
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    SQLALCHEMY_DATABASE_URI = _env("TEST_DATABASE_URL", "sqlite://")
    MAIL_SERVER = None
