// Forms marked data-submit-once create a one-time secret, which the server shows in its answer to the
// POST and nowhere else. A second click would send the form again: the server refuses that resend
// (the form's key is spent) and the browser would show the refusal instead of the secret. So the
// first submission is the only one.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-submit-once")) {
      return;
    }
    if (form.getAttribute("data-sent") === "true") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "true");
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
    });
  });
})();
