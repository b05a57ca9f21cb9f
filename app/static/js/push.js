/* Push notices on this device, for the section <section data-push> of the notices page
   (templates/cabinet/profile_push.html): «Включить уведомления на этом устройстве» asks the
   browser's permission, subscribes through the app's service worker (registered by app.js)
   with the portal's VAPID key and posts the subscription (PushSubscription.toJSON()) with the
   CSRF token; «Отключить на этом устройстве» forgets it on the portal and in the browser.
   The page then reloads to show the list of devices. Messages are put in as text. */
(function () {
  "use strict";
  var section = document.querySelector("[data-push]");
  if (!section) { return; }
  var actions = section.querySelector("[data-push-actions]");
  var enable = section.querySelector("[data-push-enable]");
  var disableBox = section.querySelector("[data-push-disable]");
  var disable = disableBox.querySelector("button");
  var status = section.querySelector("[data-push-status]");
  var csrf = section.getAttribute("data-csrf");
  var FAILED = "Не удалось включить уведомления. Обновите страницу и попробуйте ещё раз.";

  function say(text) {
    if (status) { status.textContent = text; }
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) ||
      !("Notification" in window)) {
    say("Этот браузер не умеет получать push-уведомления. На iPhone и iPad они работают, " +
        "когда личный кабинет установлен на экран «Домой» как приложение.");
    return;
  }

  /* The app's service worker, or a refusal when it does not start within 10 seconds. */
  function worker() {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error("no worker")); }, 10000);
      navigator.serviceWorker.ready.then(function (registration) {
        clearTimeout(timer);
        resolve(registration);
      });
    });
  }

  function bytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function sameKey(buffer, key) {
    if (!buffer) { return false; }
    var given = new Uint8Array(buffer);
    if (given.length !== key.length) { return false; }
    for (var i = 0; i < key.length; i += 1) {
      if (given[i] !== key[i]) { return false; }
    }
    return true;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf},
      body: JSON.stringify(body)
    });
  }

  function reason(response) {
    return response.json().then(function (data) {
      return (data && data.message) || FAILED;
    }, function () { return FAILED; });
  }

  function permission() {
    return new Promise(function (resolve) {
      var asked = Notification.requestPermission(resolve);  // older Safari: a callback
      if (asked && asked.then) { asked.then(resolve); }
    });
  }

  function turnOn() {
    enable.disabled = true;
    say("Спрашиваем разрешение браузера…");
    permission().then(function (answer) {
      if (answer !== "granted") {
        throw new Error("Уведомления не разрешены. Разрешите их для этого сайта в настройках " +
                        "браузера и нажмите кнопку ещё раз.");
      }
      say("Подключаем это устройство…");
      return fetch(section.getAttribute("data-push-key"), {
        credentials: "same-origin", headers: {"Accept": "application/json"}
      });
    }).then(function (response) {
      if (!response.ok) { return reason(response).then(function (text) { throw new Error(text); }); }
      return response.json();
    }).then(function (data) {
      var key = bytes(data.publicKey);
      return worker().then(function (registration) {
        return registration.pushManager.getSubscription().then(function (old) {
          if (old && !sameKey(old.options && old.options.applicationServerKey, key)) {
            return old.unsubscribe().then(function () { return null; });  // another key
          }
          return old;
        }).then(function (old) {
          return old || registration.pushManager.subscribe({
            userVisibleOnly: true, applicationServerKey: key
          });
        });
      });
    }).then(function (subscription) {
      return post(section.getAttribute("data-push-subscribe"), subscription.toJSON());
    }).then(function (response) {
      if (!response.ok) { return reason(response).then(function (text) { throw new Error(text); }); }
      window.location.reload();
    }).catch(function (error) {
      enable.disabled = false;
      say(error && /[а-яё]/i.test(error.message || "") ? error.message : FAILED);
    });
  }

  function turnOff() {
    disable.disabled = true;
    worker().then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) { return null; }
      return post(section.getAttribute("data-push-unsubscribe"), {endpoint: subscription.endpoint})
        .then(function () { return subscription.unsubscribe(); });
    }).then(function () {
      window.location.reload();
    }).catch(function () {
      disable.disabled = false;
      say("Не удалось отключить уведомления. Обновите страницу и попробуйте ещё раз.");
    });
  }

  if (Notification.permission === "denied") {
    say("Уведомления для этого сайта запрещены в настройках браузера: разрешите их там, " +
        "затем нажмите кнопку.");
  }
  actions.hidden = false;
  enable.addEventListener("click", turnOn);
  disable.addEventListener("click", turnOff);
  worker().then(function (registration) {
    return registration.pushManager.getSubscription();
  }).then(function (subscription) {
    disableBox.hidden = !subscription;
  }, function () { /* no worker yet: only «Включить» */ });
}());
