// Starts Redoc on the API docs page (/api/redoc/) without an inline script. Redoc's styles are
// <style> elements it creates at run time; given the nonce this script tag carries, Redoc puts it on
// them, so the page's Content-Security-Policy lets them apply ('unsafe-inline' stays off).
(function () {
  "use strict";
  var nonce = document.currentScript.nonce;
  var container = document.getElementById("redoc-container");
  var options = JSON.parse(container.dataset.settings || "{}");
  options.nonce = nonce;
  Redoc.init(container.dataset.specUrl, options, container);
})();
