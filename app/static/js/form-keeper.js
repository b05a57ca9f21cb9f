/* What a person typed survives a stale form. When a form's CSRF token has expired the portal
   answers «Страница устарела» with a link back to the form (…?restore=1); this script keeps the
   form's fields in the tab's sessionStorage when it is sent, and fills them in again on that
   return. Passwords, one-time codes, files and hidden fields are never kept; a kept copy is
   dropped on the next visit to the form that is not such a return. */
(function () {
  "use strict";
  var PREFIX = "lk-form:";
  var NOT_KEPT = /^(password|hidden|file|submit|button|reset|image)$/;

  function keptFields(form) {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && field.name !== "csrf_token" && !NOT_KEPT.test(field.type) &&
        field.autocomplete !== "one-time-code";
    });
  }

  function storage() {
    try { return window.sessionStorage; } catch (error) { return null; }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target, store = storage();
    if (!store || !form || (form.getAttribute("method") || "").toLowerCase() !== "post") {
      return;
    }
    var values = {};
    keptFields(form).forEach(function (field) {
      var list = values[field.name] = values[field.name] || [];
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) { list.push(field.value); }
      } else if (field.multiple) {
        Array.prototype.forEach.call(field.selectedOptions, function (option) {
          list.push(option.value);
        });
      } else {
        list.push(field.value);
      }
    });
    store.setItem(PREFIX + location.pathname, JSON.stringify(values));
  }, true);

  function restore(form, values) {
    var seen = {};
    keptFields(form).forEach(function (field) {
      var list = values[field.name];
      if (!list) { return; }
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = list.indexOf(field.value) !== -1;
      } else if (field.multiple) {
        Array.prototype.forEach.call(field.options, function (option) {
          option.selected = list.indexOf(option.value) !== -1;
        });
      } else {
        var index = seen[field.name] = (seen[field.name] || 0);
        if (index < list.length) { field.value = list[index]; }
        seen[field.name] = index + 1;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var store = storage(), key = PREFIX + location.pathname;
    if (!store || document.querySelector("[data-restore-form]")) { return; }
    var kept = store.getItem(key);
    store.removeItem(key);
    var address = new URL(location.href);
    if (!kept || !address.searchParams.has("restore")) { return; }
    address.searchParams.delete("restore");
    history.replaceState(null, "", address.pathname + address.search + address.hash);
    var form = document.querySelector("main form[method=post], main form[method=POST]");
    if (form) { restore(form, JSON.parse(kept)); }
  });
}());
