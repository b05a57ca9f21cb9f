/* The «not a robot» check of the sign-in forms (app/templates/auth/_challenge.html): solves the
   server's ALTCHA challenge (PBKDF2/SHA-256, by the browser's WebCrypto, nothing loaded from
   elsewhere) and puts the solution, as ALTCHA's widget would, in the form's «altcha» field.
   It starts by itself and needs nothing from the person; a «Войти» pressed before it ends
   waits for it and then sends the form. The status is a polite live region (said once at the
   start and once at the end), the progress a <progress> element. */
(function () {
  "use strict";
  var BATCH = 8; // tries in flight at once: WebCrypto runs them off the main thread

  function hexToBytes(hex) {
    var bytes = new Uint8Array(hex.length / 2);
    for (var i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    }
    return bytes;
  }

  function bytesToHex(bytes) {
    var hex = "";
    for (var i = 0; i < bytes.length; i++) {
      hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return hex;
  }

  function derive(parameters, salt, password) {
    var hash = parameters.algorithm.split("/")[1] || "SHA-256";
    return crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"])
      .then(function (key) {
        return crypto.subtle.deriveBits({name: "PBKDF2", hash: hash, salt: salt,
                                         iterations: parameters.cost},
                                        key, parameters.keyLength * 8);
      })
      .then(function (bits) { return new Uint8Array(bits); });
  }

  /* The counter whose key starts with the challenge's prefix, tried from zero as the server
     expects; onProgress(tries) now and then. */
  function solve(challenge, onProgress) {
    var parameters = challenge.parameters;
    var salt = hexToBytes(parameters.salt);
    var nonce = hexToBytes(parameters.nonce);
    var prefix = parameters.keyPrefix.toLowerCase();
    var started = performance.now();

    function attempt(counter) {
      var password = new Uint8Array(nonce.length + 4);
      password.set(nonce);
      new DataView(password.buffer).setUint32(nonce.length, counter, false);
      return derive(parameters, salt, password);
    }

    function batch(base) {
      var tries = [];
      for (var k = 0; k < BATCH; k++) {
        tries.push(attempt(base + k));
      }
      return Promise.all(tries).then(function (keys) {
        for (var k = 0; k < keys.length; k++) {
          var hex = bytesToHex(keys[k]);
          if (hex.indexOf(prefix) === 0) {
            return {counter: base + k, derivedKey: hex,
                    time: Math.round(performance.now() - started)};
          }
        }
        if (base + BATCH > 0xffffffff) {
          return null;
        }
        onProgress(base + BATCH);
        return batch(base + BATCH);
      });
    }
    return batch(0);
  }

  function start(box) {
    var form = box.closest("form");
    var field = box.querySelector("input[name=altcha]");
    var status = box.querySelector("[data-challenge-status]");
    var bar = box.querySelector("progress");
    var challenge = JSON.parse(box.getAttribute("data-signin-challenge"));
    var work = (challenge.parameters.data || {}).work || 1000;
    var done = false, waiting = false;

    function say(text) { status.textContent = text; }

    form.addEventListener("submit", function (event) {
      if (done) {
        return;
      }
      event.preventDefault();
      waiting = true;
      say("Подождите: проверка ещё идёт. Форма отправится сама, как только она закончится.");
    });

    if (!window.crypto || !window.crypto.subtle || !window.Promise) {
      say(window.isSecureContext === false
        ? "Проверка работает только на защищённой странице: откройте сайт по адресу, " +
          "который начинается с https://, или войдите по коду из SMS или письма."
        : "Этот браузер не умеет проходить проверку. Откройте страницу в другом браузере " +
          "или войдите по коду из SMS или письма.");
      box.classList.add("has-failed");
      return;
    }
    box.classList.add("is-running");
    say("Идёт проверка, что вы не робот: она займёт несколько секунд и не требует действий.");
    solve(challenge, function (tries) {
      if (bar) {
        bar.value = Math.min(99, Math.round(tries * 100 / work));
      }
    }).then(function (solution) {
      box.classList.remove("is-running");
      if (!solution) {
        box.classList.add("has-failed");
        say("Проверку пройти не удалось. Обновите страницу и попробуйте ещё раз.");
        return;
      }
      field.value = btoa(JSON.stringify({challenge: challenge, solution: solution}));
      done = true;
      if (bar) {
        bar.value = 100;
      }
      box.classList.add("is-done");
      if (waiting) {
        say("Проверка пройдена, отправляем форму…");
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
      } else {
        say("Проверка пройдена. Введите пароль и нажмите «Войти».");
      }
    }, function () {
      box.classList.remove("is-running");
      box.classList.add("has-failed");
      say("Проверку пройти не удалось. Обновите страницу и попробуйте ещё раз.");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-signin-challenge]").forEach(start);
  });
}());
