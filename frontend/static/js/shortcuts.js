/* celery-live keyboard shortcuts, listed in the "?" dialog (_shortcuts.html).
 *
 * "/" focuses the runs page's search field (from another page: opens /runs/ there), "?"
 * opens the help (Esc closes it, as any modal dialog), "g" then a letter goes to a page.
 * Never while typing in a field, nor with Ctrl, Alt or Cmd held (the browser's own).
 */
(function () {
  "use strict";
  var SEARCH_HASH = "#search";
  var CHORD_MS = 1500; // how long after "g" its letter counts
  var pendingGo = 0; // when "g" was pressed, or 0

  function typing(target) {
    if (!target || !target.closest) return false;
    return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]"));
  }

  function help() {
    return document.getElementById("shortcuts");
  }

  function focusSearch() {
    var field = document.getElementById("search");
    if (field) {
      field.focus();
      field.select();
      return;
    }
    var dialog = help();
    if (dialog) window.location.assign(dialog.getAttribute("data-runs-url") + SEARCH_HASH);
  }

  function go(letter) {
    var dialog = help();
    var entry = dialog && dialog.querySelector('[data-go="' + letter + '"]');
    if (entry) window.location.assign(entry.getAttribute("data-href"));
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.defaultPrevented || evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) return;
    var dialog = help();
    if (dialog && dialog.open) return; // the dialog handles its own keys (Esc)
    if (pendingGo && Date.now() - pendingGo < CHORD_MS && /^[a-z]$/.test(evt.key)) {
      pendingGo = 0;
      evt.preventDefault();
      go(evt.key);
      return;
    }
    pendingGo = 0;
    if (evt.key === "/") {
      evt.preventDefault(); // or the browser's quick find takes the "/"
      focusSearch();
    } else if (evt.key === "?") {
      evt.preventDefault();
      if (dialog) dialog.showModal();
    } else if (evt.key === "g") {
      pendingGo = Date.now();
    }
  });

  // Arriving from "/" on another page: the search field takes the keys.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.location.hash === SEARCH_HASH) focusSearch();
  });
})();
