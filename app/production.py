"""The start-up check of a production configuration (PRODUCTION=1).

Several web processes, possibly on several machines, must share the signing keys and keep
their state in PostgreSQL and Redis; a setting that only works for one process fails later and
quietly (sessions that vanish between processes, rate limits multiplied by the number of
workers). So the portal refuses to start instead, naming the variable to set, in Russian and in
English. ``python -m app.production`` runs the same check without building the app (``make
serve`` does, before migrating); gunicorn.conf.py runs it before forking workers, and
create_app() whenever PRODUCTION is on outside the test suite."""
from __future__ import annotations

import sys
from typing import Any, Mapping

from app.services import vapid

#: Keys that must be long random strings from the environment, the same in every process.
#: name -> (what it is in Russian, in English).
SHARED_KEYS = {
    "SECRET_KEY": ("ключ подписи сессий и CSRF", "the session and CSRF signing key"),
    "OTP_HASH_KEY": ("ключ хэша одноразовых кодов и счётчиков попыток",
                     "the key of one-time code hashes and attempt counters"),
}
MIN_KEY_LENGTH = 32
#: Placeholder values seen in examples and templates, refused whatever their length.
KNOWN_DEFAULTS = frozenset({
    "secret", "secret-key", "secret_key", "changeme", "change-me", "change_me", "dev",
    "development", "test", "your-secret-key", "please-change-me", "replace-me",
    "\\2\\1thisismyscretkey\\1\\2\\e\\y\\y\\h",  # Flask-AppBuilder's example config
})
GENERATE = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
#: Prints a new VAPID key pair (run it without PRODUCTION, once, and keep the pair).
GENERATE_VAPID = "flask --app run push vapid-keys"
#: app.services.vapid.problem -> (Russian, English) of the refusal.
VAPID_PROBLEMS = {
    "missing": ("VAPID_PRIVATE_KEY не задан: в продакшене ключ подписи push-уведомлений "
                "берётся только из окружения, один для всех веб-процессов (подписки устройств "
                "привязаны к нему)",
                "VAPID_PRIVATE_KEY is not set: in production the Web Push signing key must "
                "come from the environment, the same for every web process (devices' "
                "subscriptions are bound to it)"),
    "unreadable": ("VAPID_PRIVATE_KEY не читается как ключ P-256 (base64url, 32 байта)",
                   "VAPID_PRIVATE_KEY is not a P-256 key (base64url, 32 bytes)"),
    "mismatch": ("VAPID_PUBLIC_KEY не соответствует VAPID_PRIVATE_KEY (можно не задавать: "
                 "открытый ключ вычисляется из закрытого)",
                 "VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY (it may be left unset: it "
                 "is derived from the private key)"),
    "subject": ("VAPID_SUBJECT должен быть адресом mailto: или https:, по которому службы "
                "push-уведомлений могут связаться с компанией",
                "VAPID_SUBJECT must be a mailto: or https: contact for the push services"),
}


class ProductionConfigError(RuntimeError):
    """The configuration is not fit for production; the message says what to set."""


def problems(config: Mapping[str, Any], debug: bool = False) -> list[str]:
    """What keeps ``config`` from serving in production (empty when nothing does)."""
    if not config.get("PRODUCTION"):
        return []
    found = []
    keys = [config.get(name) for name in SHARED_KEYS]
    for (name, (russian, english)), value in zip(SHARED_KEYS.items(), keys, strict=True):
        if not value:
            found.append(
                f"{name} не задан: в продакшене {russian} берётся только из окружения, один для "
                f"всех веб-процессов. / {name} is not set: in production {english} must come "
                f"from the environment, the same for every web process. Задайте / set: "
                f"{name}=$({GENERATE})")
        elif len(value) < MIN_KEY_LENGTH or value.strip().lower() in KNOWN_DEFAULTS:
            found.append(
                f"{name} — значение по умолчанию или слишком короткое (нужно не меньше "
                f"{MIN_KEY_LENGTH} случайных символов). / {name} is a default or too short "
                f"(at least {MIN_KEY_LENGTH} random characters). Задайте / set: "
                f"{name}=$({GENERATE})")
    if keys[0] and keys[0] == keys[1]:
        found.append("SECRET_KEY и OTP_HASH_KEY совпадают: задайте разные ключи. / SECRET_KEY "
                     "and OTP_HASH_KEY are the same: set two different keys.")
    vapid_problem = vapid.problem(config)
    if vapid_problem:
        russian, english = VAPID_PROBLEMS[vapid_problem]
        found.append(f"{russian}. / {english}. Создайте ключи / create the keys: "
                     f"{GENERATE_VAPID}")
    database = str(config.get("SQLALCHEMY_DATABASE_URI") or "")
    if database.startswith("sqlite") and not config.get("DEMO"):
        found.append(
            "DATABASE_URL указывает на SQLite: в продакшене нужна PostgreSQL "
            "(postgresql+psycopg://user:password@host/db); для демонстрации задайте DEMO=1. / "
            "DATABASE_URL is SQLite: production needs PostgreSQL; set DEMO=1 for a "
            "demonstration.")
    limits = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if (config.get("RATELIMIT_ENABLED", True) and limits.startswith("memory")
            and not config.get("DEMO")):
        found.append(
            "Счётчики ограничений попыток хранятся в памяти процесса: задайте REDIS_URL или "
            "RATELIMIT_STORAGE_URI (redis://host:6379/0), общий для всех веб-процессов. / "
            "Rate-limit counters are in process memory: set REDIS_URL or RATELIMIT_STORAGE_URI, "
            "shared by every web process.")
    if not config.get("CELERY_BROKER_URL") and not config.get("DEMO"):
        found.append(
            "CELERY_BROKER_URL не задан: фоновые задачи (расчёт периода, рассылки) шли бы внутри "
            "веб-запроса, обрывались бы по таймауту gunicorn и терялись при перезапуске; задайте "
            "CELERY_BROKER_URL (redis://host:6379/1) и запустите worker. / CELERY_BROKER_URL is "
            "not set: background jobs would run inside a web request, be cut by gunicorn's "
            "timeout and lost on a restart; set it and run a Celery worker.")
    if str(config.get("TELEGRAM_DEV_CHAT") or "").strip().lower() in {"1", "true", "yes", "on"}:
        found.append("TELEGRAM_DEV_CHAT включает учебный чат с Telegram-ботом (/dev/telegram, "
                     "без Telegram): уберите его. / TELEGRAM_DEV_CHAT turns the Telegram bot's "
                     "development chat on: unset it.")
    if debug:
        found.append("Включён режим отладки: уберите FLASK_DEBUG. / Debug mode is on: unset "
                     "FLASK_DEBUG.")
    return found


def check(config: Mapping[str, Any], debug: bool = False) -> None:
    """Raise ProductionConfigError listing every problem at once."""
    found = problems(config, debug)
    if found:
        raise ProductionConfigError(
            "Портал не запущен: настройки не годятся для продакшена (PRODUCTION=1). / "
            "The portal refuses to start: the settings are not fit for production.\n"
            + "\n".join(f"- {line}" for line in found))


def environment_config() -> dict[str, Any]:
    """The settings config.py reads from the environment, as a plain mapping."""
    from config import Config

    settings = Config()
    return {name: getattr(settings, name) for name in dir(settings) if name.isupper()}


def main() -> int:
    from flask.helpers import get_debug_flag

    try:
        check(environment_config(), debug=get_debug_flag())
    except ProductionConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
