"""A device as a person knows it («Chrome на Android», «Safari на iPhone», «Мобильное
приложение»), from the User-Agent read by ua-parser: the list of sign-ins in the profile and
the list of devices that take push notices both name devices this way."""
from __future__ import annotations

from functools import lru_cache

#: The longest label kept (the columns' length).
MAX_DEVICE = 80
#: The longest User-Agent read: a longer one is no real browser's.
MAX_USER_AGENT = 1000
UNKNOWN_DEVICE = "Неизвестное устройство"
APP_DEVICE = "Мобильное приложение"
#: ua-parser's browser families as a person knows them; the rest keep their own name.
BROWSERS = {
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome",
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Edge Mobile": "Edge",
    "Opera Mobile": "Opera", "Yandex Browser": "Яндекс Браузер", "HeadlessChrome": "Chrome",
}
#: Operating systems by ua-parser's family; iOS is named by the device (iPhone, iPad).
SYSTEMS = {"Mac OS X": "Mac", "Chrome OS": "Chromebook", "Ubuntu": "Linux", "Fedora": "Linux"}
#: Families ua-parser gives to what is no browser a person would name.
NOT_BROWSERS = {None, "Other", "curl", "Wget", "Python Requests", "okhttp"}


@lru_cache(maxsize=1024)
def device_label(user_agent: str | None, app: bool = False) -> str:
    """The device's name; ``app``: the portal's mobile app, whose HTTP client's own name
    says nothing to a person."""
    from ua_parser import parse

    result = parse((user_agent or "")[:MAX_USER_AGENT])
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    device = result.device.family if result.device else None
    if system == "iOS":
        system = device if device in ("iPhone", "iPad") else "iOS"
    elif system in (None, "Other"):
        system = None
    else:
        system = SYSTEMS.get(system, system)
    if app:
        label = f"{APP_DEVICE} на {system}" if system else APP_DEVICE
    elif browser in NOT_BROWSERS:
        label = system or UNKNOWN_DEVICE
    else:
        browser = BROWSERS.get(browser, browser)
        label = f"{browser} на {system}" if system else browser
    return label[:MAX_DEVICE]
