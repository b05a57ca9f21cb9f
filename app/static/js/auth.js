/* Show or hide a password; switch the login field between phone and e-mail. */
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-toggle-password]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("data-toggle-password"));
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.firstChild.textContent = show ? "Скрыть" : "Показать";
    });
  });
  document.querySelectorAll(".switch").forEach(function (group) {
    var target = document.getElementById(group.getAttribute("data-target"));
    function apply() {
      group.querySelectorAll("label").forEach(function (label) {
        var radio = label.querySelector("input");
        label.classList.toggle("active", radio.checked);
        if (radio.checked && target) {
          var phone = radio.value === "phone";
          target.placeholder = phone ? "+7 (918) 123-45-67" : "ivanov@mail.ru";
          target.type = phone ? "tel" : "email";
          target.autocomplete = phone ? "tel" : "email";
          var caption = document.querySelector("label[for='" + target.id + "']");
          if (caption) caption.textContent = phone ? "Номер мобильного телефона" : "Электронная почта";
        }
      });
    }
    group.addEventListener("change", apply);
    apply();
  });
});
