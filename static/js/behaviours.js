// Small behaviours that templates ask for with data- attributes, because the pages' Content-Security-
// Policy runs no inline script and no on...= handler. Listeners sit on the document, so markup added
// later behaves the same.
(function () {
  "use strict";
  // <select data-submit-on-change>: choosing an option submits its form (the tenant switcher; its
  // <noscript> button does the same without JavaScript).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("select[data-submit-on-change]") && field.form) {
      field.form.requestSubmit();
    }
  });
  // <input data-select-on-focus>: focusing selects the whole value, ready to copy (a new token or secret).
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field.matches && field.matches("input[data-select-on-focus]")) {
      field.select();
    }
  });
})();
