/* The portal as an installable app, on every customer's page (portal/site.html):
   - registers the service worker (/sw.js, templates/pwa/sw.js), has it take over a page loaded
     without it, and then asks it to keep a copy of that page;
   - keeps the browser's offer to install for the «Установить приложение» button of /app/;
   - on «Выйти» (a form), stops this device's push notices and empties the app's caches and
     storage before sending it (the sign-out answer's Clear-Site-Data does the emptying again);
   - on a readings form (<form data-app-queue>) without a network, keeps the values in a queue
     of the signed-in user (<meta name="app-user">), shows it («Показания ждут отправки»), and
     sends it when the network returns to the form's own URL, asking for JSON: the same check
     as a typed form; a refusal shows the server's reason, a rollover or a spike asks to
     confirm. Texts from the server are put in as text, never as markup. */
(function () {
  "use strict";
  var script = document.currentScript;
  var meta = document.querySelector('meta[name="app-user"]');
  var user = meta ? meta.content : "";
  var QUEUE = "nesk-app:readings:" + user;
  var workerUrl = script && script.getAttribute("data-worker");
  var tokenUrl = script && script.getAttribute("data-token");
  var installOffer = null;
  var sending = false;
  var notes = [];

  /* The service worker */

  function register() {
    if (!("serviceWorker" in navigator) || !workerUrl) { return; }
    var controlled = !!navigator.serviceWorker.controller;
    if (controlled && user) {  // who is signed in, even when this page went past the worker
      navigator.serviceWorker.controller.postMessage({type: "user", user: user});
    }
    navigator.serviceWorker.addEventListener("controllerchange", function () {
      var worker = navigator.serviceWorker.controller;
      if (!controlled && worker && user) {
        worker.postMessage({type: "user", user: user});
        worker.postMessage({type: "keep", url: location.href});
      }
      controlled = true;
    });
    navigator.serviceWorker.register(workerUrl, {scope: "/"}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      // A page the browser loaded past the worker (a forced reload, a form's redirect) is
      // taken over now, so that it, too, is kept for offline.
      if (!navigator.serviceWorker.controller && registration.active) {
        registration.active.postMessage({type: "claim"});
      }
    }).catch(function () {});
  }

  /* Installing */

  function showInstall() {
    var button = document.querySelector("[data-app-install]");
    if (button) { button.hidden = !installOffer; }
  }

  window.addEventListener("beforeinstallprompt", function (event) {
    if (!document.querySelector("[data-app-install]")) { return; }  // the browser's own offer
    event.preventDefault();
    installOffer = event;
    showInstall();
  });

  window.addEventListener("appinstalled", function () {
    installOffer = null;
    showInstall();
    var done = document.querySelector("[data-app-installed]");
    if (done) { done.hidden = false; }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-app-install]");
    if (!button || !installOffer) { return; }
    var offer = installOffer;
    installOffer = null;
    offer.prompt();
    offer.userChoice.then(function (choice) {
      if (choice.outcome !== "accepted") { installOffer = offer; }
      showInstall();
    }, showInstall);
  });

  /* Signing out */

  /* The device stops taking this user's push notices: the push service forgets the
     subscription, so the portal's next send is answered 410 and the row is deleted. */
  function stopPush() {
    if (!navigator.serviceWorker) { return Promise.resolve(); }
    return navigator.serviceWorker.getRegistration().then(function (registration) {
      return registration && registration.pushManager && registration.pushManager.getSubscription();
    }).then(function (subscription) {
      return subscription && subscription.unsubscribe();
    }).catch(function () { /* no push here */ });
  }

  function forgetAll() {
    var worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (worker) { worker.postMessage({type: "signout"}); }
    var pushStopped = stopPush();
    try {
      localStorage.clear();
      sessionStorage.clear();
    } catch (error) { /* storage switched off: nothing kept */ }
    if (!window.caches) { return pushStopped; }
    return Promise.all([pushStopped, caches.keys().then(function (names) {
      return Promise.all(names.map(function (name) { return caches.delete(name); }));
    })]);
  }

  /* «Выйти» is a form (<form data-app-signout>, a POST with the CSRF token): held until the
     caches are empty (two seconds at most), then sent; form.submit() fires no second submit
     event, so it leaves at once. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-app-signout]") || event.defaultPrevented) {
      return;
    }
    event.preventDefault();
    var leave = function () { form.submit(); };
    var late = new Promise(function (resolve) { setTimeout(resolve, 2000); });
    Promise.race([forgetAll(), late]).then(leave, leave);
  });

  /* The queue of readings */

  function load() {
    try {
      return JSON.parse(localStorage.getItem(QUEUE) || "[]");
    } catch (error) {
      return [];
    }
  }

  function save(list) {
    try {
      if (list.length) {
        localStorage.setItem(QUEUE, JSON.stringify(list));
      } else {
        localStorage.removeItem(QUEUE);
      }
    } catch (error) { /* storage full or switched off: the queue lives as long as the page */ }
    render();
  }

  function stamp(time) {
    var when = new Date(time);
    var two = function (number) { return String(number).padStart(2, "0"); };
    return two(when.getDate()) + "." + two(when.getMonth() + 1) + "." + when.getFullYear() +
      " " + two(when.getHours()) + ":" + two(when.getMinutes());
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function button(label, className, action, id) {
    var node = element("button", "btn " + className, label);
    node.type = "button";
    node.setAttribute("data-queue-" + action, id);
    return node;
  }

  function entryBox(entry) {
    var kinds = {waiting: "info", confirm: "warning", refused: "danger"};
    var box = element("div", "alert alert-" + kinds[entry.state]);
    var heading = {
      waiting: "Показания ждут отправки: ",
      confirm: "Подтвердите показания: ",
      refused: "Показания не приняты: "
    }[entry.state];
    var line = element("p");
    line.appendChild(element("b", "", heading));
    line.appendChild(document.createTextNode(entry.title + ". " + entry.lines.join("; ") + "."));
    box.appendChild(line);
    if (entry.message) { box.appendChild(element("p", "", entry.message)); }
    box.appendChild(element("p", "small", entry.state === "waiting"
      ? "Введены " + stamp(entry.at) + ". Отправим сами, когда появится связь."
      : "Введены " + stamp(entry.at) + "."));
    var actions = element("div", "app-queue-actions");
    if (entry.state === "confirm") {
      actions.appendChild(button("Подтверждаю: показания сняты верно", "btn-primary", "confirm",
                                 entry.id));
    }
    actions.appendChild(button(entry.state === "refused" ? "Убрать" : "Не отправлять",
                               "btn-link", "drop", entry.id));
    box.appendChild(actions);
    return box;
  }

  function render() {
    var main = document.getElementById("main");
    if (!main) { return; }
    var list = user ? load() : [];
    var panel = document.getElementById("app-queue");
    if (!list.length && !notes.length) {
      if (panel) { panel.remove(); }
    } else {
      if (!panel) {
        panel = element("section", "app-queue");
        panel.id = "app-queue";
        panel.setAttribute("aria-label", "Очередь показаний");
        panel.setAttribute("aria-live", "polite");
        var banner = main.querySelector(".app-offline");
        main.insertBefore(panel, banner ? banner.nextSibling : main.firstChild);
      }
      panel.replaceChildren();
      notes.forEach(function (note) { panel.appendChild(element("div", note.kind, note.text)); });
      list.forEach(function (entry) { panel.appendChild(entryBox(entry)); });
    }
    var hint = document.querySelector("form[data-app-queue] .app-queue-hint");
    if (hint) { hint.hidden = navigator.onLine; }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!user || navigator.onLine || event.defaultPrevented || !form.matches ||
        !form.matches("form[data-app-queue]")) { return; }
    event.preventDefault();
    var fields = {}, lines = [];
    form.querySelectorAll("input[data-queue-label]").forEach(function (input) {
      fields[input.name] = input.value.trim();
      lines.push(input.getAttribute("data-queue-label") + " — " + (input.value.trim() || "не указано"));
    });
    var confirmed = form.querySelector("input[name=confirmed]");
    var url = form.getAttribute("data-app-queue");
    var list = load().filter(function (entry) { return entry.url !== url; });
    list.push({
      id: Date.now().toString(36) + Math.random().toString(36).slice(2, 8),
      url: url, title: form.getAttribute("data-queue-title"), lines: lines, fields: fields,
      confirmed: !!(confirmed && confirmed.checked), at: Date.now(), state: "waiting",
      message: ""
    });
    save(list);
    var panel = document.getElementById("app-queue");
    if (panel) { panel.scrollIntoView({block: "start"}); }
  });

  function settle(id, answer) {
    var list = load(), entry = list.find(function (item) { return item.id === id; });
    if (!entry) { return; }
    if (answer.status === "accepted") {
      list = list.filter(function (item) { return item.id !== id; });
      notes.push({kind: "alert alert-success", text: answer.message + " " + entry.title + ". " +
                  (answer.details || []).join("; ") + "."});
    } else {
      entry.state = answer.status === "confirm" ? "confirm" : "refused";
      entry.message = [answer.message].concat(answer.details || []).join(" ");
    }
    save(list);
  }

  function sendOne(entry, token) {
    var body = new URLSearchParams(entry.fields);
    body.set("action", "confirm");
    if (entry.confirmed) { body.set("confirmed", "1"); }
    return fetch(entry.url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"Accept": "application/json", "X-CSRFToken": token}
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {  // signed out meanwhile: kept for later
        notes = [{kind: "alert alert-info",
                  text: "Войдите в личный кабинет: показания из очереди отправятся после входа."}];
        return;
      }
      return response.json().then(function (answer) { settle(entry.id, answer); });
    }, function () { /* the network went again: kept */ });
  }

  function send() {
    var waiting = user ? load().filter(function (entry) { return entry.state === "waiting"; })
      : [];
    if (sending || !navigator.onLine || !waiting.length || !tokenUrl) { return; }
    sending = true;
    fetch(tokenUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        return waiting.reduce(function (done, entry) {
          return done.then(function () { return sendOne(entry, data.csrf_token); });
        }, Promise.resolve());
      })
      .catch(function () { /* no network after all: kept */ })
      .then(function () {
        sending = false;
        render();
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest("[data-queue-confirm], [data-queue-drop]");
    if (!target) { return; }
    var list = load();
    var dropped = target.getAttribute("data-queue-drop");
    if (dropped) {
      save(list.filter(function (entry) { return entry.id !== dropped; }));
      return;
    }
    var confirmed = target.getAttribute("data-queue-confirm");
    list.forEach(function (entry) {
      if (entry.id === confirmed) {
        entry.confirmed = true;
        entry.state = "waiting";
        entry.message = "";
      }
    });
    save(list);
    send();
  });

  /* A page shown from the worker's copy says so; the network returning offers a fresh one. */
  function online() {
    var banner = document.querySelector(".app-offline");
    if (banner && !banner.querySelector("a")) {
      banner.replaceChildren(element("b", "", "Связь восстановлена. "));
      var again = element("a", "", "Обновить страницу");
      again.href = location.href;
      banner.appendChild(again);
    }
    render();
    send();
  }

  window.addEventListener("online", online);
  window.addEventListener("offline", render);
  render();
  send();
  if (window.matchMedia && window.matchMedia("(display-mode: standalone)").matches) {
    var inside = document.querySelector("[data-app-standalone]");
    if (inside) { inside.hidden = false; }
  }
  if (document.readyState === "complete") {
    register();
  } else {
    window.addEventListener("load", register);
  }
}());
