/* Explain mode's toggle: `body.explain` shows each event's process, signal and sentence
 * (server-rendered, hidden otherwise); the choice is remembered in localStorage. */
(function () {
  "use strict";
  var KEY = "celery-live:explain";

  function stored() {
    try { return window.localStorage.getItem(KEY) === "on"; } catch (e) { return false; }
  }

  function apply(on) {
    document.body.classList.toggle("explain", on);
    document.querySelectorAll(".explain-toggle").forEach(function (button) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest(".explain-toggle");
    if (!button) return;
    var on = !document.body.classList.contains("explain");
    try { window.localStorage.setItem(KEY, on ? "on" : "off"); } catch (e) { /* private mode: this page only */ }
    apply(on);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(stored()); });
  } else {
    apply(stored());
  }
})();
