"""The notices page's script (js/push.js) in headless Chromium: «Включить уведомления на этом
устройстве» asks permission, subscribes through the app's service worker with the portal's
VAPID key and posts the subscription with the CSRF token; «Отключить на этом устройстве» and
the list's own «Отключить» remove it. A headless browser has no push service to subscribe to,
so PushManager alone is a stand-in; the rest is the browser's own."""
from __future__ import annotations

import json

import pytest

from app.services import push, vapid
from tests.factories import PASSWORD
from tests.test_push import Device, devices_of, resident, service  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser


#: PushManager's subscribe and getSubscription answered with the test's device (kept in
#: sessionStorage across the page's reloads, with the application server key the page gave);
#: everything else (permission, the service worker, the CSRF token, the posts) is the
#: browser's own.
FAKE_PUSH_MANAGER = """
(() => {
  const device = %s;
  const forget = () => {
    sessionStorage.removeItem("test-push-key");
    return Promise.resolve(true);
  };
  const made = (options) => ({endpoint: device.endpoint, options: options, toJSON: () => device,
                              unsubscribe: forget});
  PushManager.prototype.getSubscription = function () {
    const key = sessionStorage.getItem("test-push-key");
    const options = key && {applicationServerKey: new Uint8Array(JSON.parse(key))};
    return Promise.resolve(key ? made(options) : null);
  };
  PushManager.prototype.subscribe = function (options) {
    const key = Array.from(new Uint8Array(options.applicationServerKey));
    sessionStorage.setItem("test-push-key", JSON.stringify(key));
    return Promise.resolve(made(options));
  };
})();
"""


def test_the_page_script_subscribes_this_device_and_the_list_switches_it_off(
        app, browser_page, live_server, session, make_user_fn, service):  # noqa: F811
    user = resident(make_user_fn, "browser-push")
    session.commit()
    page = browser_page
    device = Device(service, "chromium")
    page.context.grant_permissions(["notifications"], origin=live_server)
    page.context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(device.json))
    page.goto("/auth/")
    page.fill("input[name=login]", "browser-push")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    page.goto("/cabinet/profile/notifications")

    enable = page.get_by_role("button", name="Включить уведомления на этом устройстве")
    this_device_off = page.get_by_role("button", name="Отключить на этом устройстве")
    assert enable.is_visible() and not this_device_off.is_visible()

    with page.expect_navigation():  # push.js reloads the page once the device is kept
        enable.click()
    row, = devices_of(session, user)
    assert row.endpoint == device.endpoint and row.device == "Chrome на Linux"
    assert "Push-уведомления включены на этом устройстве («Chrome на Linux»)." in page.content()
    given = page.evaluate("JSON.parse(sessionStorage.getItem('test-push-key'))")
    assert given == list(vapid.b64url_decode(push.public_key(app.config)))

    this_device_off.wait_for()  # shown once push.js finds this browser subscribed
    with page.expect_navigation():
        this_device_off.click()
    assert devices_of(session, user) == []
    assert not this_device_off.is_visible()

    with page.expect_navigation():
        enable.click()
    assert len(devices_of(session, user)) == 1
    with page.expect_navigation():  # the list's own form, without the script
        page.get_by_role("button", name="Отключить уведомления на устройстве «Chrome на Linux»"
                         ).click()
    assert "Уведомления пока не включены ни на одном устройстве." in page.content()
    assert devices_of(session, user) == []
