/* Forms that ask before they are sent: <form data-confirm="Вопрос?">. The question lives in
   the markup and this one listener asks it, because the Content-Security-Policy runs no
   inline handlers (onsubmit="..."). */
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form && form.getAttribute ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
}, true);
