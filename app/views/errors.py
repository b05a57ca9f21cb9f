"""Error pages: every refusal a person may meet, in Russian and with what to do next, on every
entrance (Werkzeug, Flask-WTF and Flask-Limiter answer in English); under /api/ the same as JSON
with a ``message``, like the API's own answers."""
from __future__ import annotations

import math
import time

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.services.russian import plural

#: Status -> (title, what happened and what to do).
ERROR_PAGES = {
    400: ("Неверный запрос", "Запрос не удалось разобрать. Вернитесь на предыдущую страницу и "
                             "повторите."),
    403: ("Доступ запрещён", "У вашей учётной записи нет прав на эту страницу."),
    404: ("Страница не найдена", "Такой страницы нет, или запись относится к другому филиалу."),
    405: ("Метод не поддерживается", "Этот адрес не принимает такой запрос."),
    413: ("Слишком большой запрос", "Запрос больше допустимого."),
    429: ("Слишком много попыток", "Вы сделали слишком много попыток подряд."),
    500: ("Ошибка на сервере", "Что-то пошло не так на нашей стороне, ваши данные не изменены. "
                               "Повторите через несколько минут; если ошибка повторится, "
                               "напишите нам."),
}
#: A form whose CSRF token expired (or never came): the usual 400 a person meets.
STALE_FORM = ("Страница устарела", "Обновите её и повторите: форма действует ограниченное "
                                   "время, чтобы её нельзя было подделать.")
#: Pages that must render without the database or a signed-in user (it may be what failed).
STANDALONE = {500}


def init_app(app: Flask) -> None:
    for code in ERROR_PAGES:
        app.register_error_handler(code, error_page)


def error_page(error: HTTPException):
    code = error.code or 500
    title, text = STALE_FORM if isinstance(error, CSRFError) else ERROR_PAGES[code]
    headers, hint = passed_on_headers(error), ""
    if code == 413:
        hint = too_large_hint()
    elif code == 429:
        seconds = retry_after()
        headers["Retry-After"] = str(seconds)
        hint = f"Повторите через {wait_in_words(seconds)}."
    if request.path.startswith("/api/"):
        return jsonify(message=f"{title}. {hint}" if hint else title), code, headers
    text = f"{text} {hint}".strip()
    if code in STANDALONE:
        page = render_template("portal/error_standalone.html", code=code, title=title, text=text)
    else:
        with_user()
        appbuilder = current_app.appbuilder
        again = form_page() if isinstance(error, CSRFError) else None
        page = render_template("portal/error.html", code=code, title=title, text=text,
                               again=again, appbuilder=appbuilder,
                               base_template=appbuilder.base_template)
    return page, code, headers


def passed_on_headers(error: HTTPException) -> dict[str, str]:
    """What the refusal itself says beyond its page (405's ``Allow``, which RFC 9110 asks
    for), on every entrance: the page here replaces only the body."""
    headers = {name: value for name, value in error.get_headers()
               if name.lower() != "content-type"}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))  # the same order each time
    return headers


def with_user() -> None:
    """The signed-in user for the page's menu: a refusal raised before the request got that
    far (a body too large or a missing CSRF token, found when the form is read) has none."""
    g.setdefault("user", current_user)


def form_page() -> str:
    """Where the refused form was: the page it was posted from when that is ours (going back
    there, a browser usually keeps what was typed), else its own address."""
    referrer = request.referrer or ""
    return referrer if referrer.startswith(request.host_url) else request.path


def too_large_hint() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if not limit:
        return "Уменьшите файл и отправьте снова."
    return (f"Не более {math.ceil(limit / 2**20)} МБ вместе с файлами: уменьшите их и "
            "отправьте снова.")


def retry_after() -> int:
    """Seconds until the limit that refused the request lets one through again (a minute when
    the refusal names no limit)."""
    limiter = getattr(current_app.appbuilder.sm, "limiter", None)  # FAB's, when it has one
    limit = limiter.current_limit if limiter is not None else None
    if limit is None:
        return 60
    window = limit.limit.get_expiry()  # reset_at is rounded up to a whole second
    return max(1, min(window, math.ceil(limit.reset_at - time.time())))


def wait_in_words(seconds: int) -> str:
    """«40 секунд», «2 минуты», «15 минут»: rounded up to whole minutes past a minute."""
    if seconds < 60:
        return f"{seconds} {plural(seconds, 'секунду', 'секунды', 'секунд')}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} {plural(minutes, 'минуту', 'минуты', 'минут')}"
