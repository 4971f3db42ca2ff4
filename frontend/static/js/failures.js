/* celery-live failures inbox: counts each live failure into its group.
 *
 * The page's socket (/ws/page/?view=failures, stream/failures.py) appends one rendered
 * group per new failure (count 1, data-group = the group's element id) to #failure-feed.
 * Here each is merged into its group in #failures (count, first and last seen, task
 * names, the latest example) or, for a group the page does not have, becomes one; the
 * group moves to the top (the most recent failure first). The socket replays from the
 * page's cursor, so each failure arrives once.
 */
(function () {
  "use strict";

  function formatWhen(root) {
    root.querySelectorAll("time[data-when]").forEach(function (el) {
      var ts = parseFloat(el.getAttribute("data-when"));
      if (isNaN(ts)) return;
      var d = new Date(ts * 1000);
      var today = d.toDateString() === new Date().toDateString();
      el.textContent = (today ? "" : d.toLocaleDateString() + " ") + d.toLocaleTimeString([], { hour12: false });
      el.setAttribute("datetime", d.toISOString());
    });
  }

  function setWhen(group, which, ts) {
    group.setAttribute("data-" + which, String(ts));
    group.querySelector(".failure__" + which).setAttribute("data-when", String(ts));
  }

  function mergeInto(group, item) {
    var count = Number(group.getAttribute("data-count")) + Number(item.getAttribute("data-count"));
    group.setAttribute("data-count", String(count));
    group.querySelector(".failure__count").textContent = String(count);
    var first = parseFloat(item.getAttribute("data-first"));
    var last = parseFloat(item.getAttribute("data-last"));
    if (!(parseFloat(group.getAttribute("data-first")) <= first)) setWhen(group, "first", first);
    if (!(parseFloat(group.getAttribute("data-last")) > last)) {
      setWhen(group, "last", last);
      group.querySelector(".failure__example").textContent = item.querySelector(".failure__example").textContent;
    }
    var names = group.querySelector(".failure__names");
    item.querySelectorAll(".failure__name").forEach(function (name) {
      var known = Array.prototype.some.call(names.children, function (n) { return n.textContent === name.textContent; });
      if (!known) names.appendChild(name);
    });
  }

  function take() {
    var feed = document.getElementById("failure-feed");
    var box = document.getElementById("failures");
    if (!feed || !box) return;
    var item;
    while ((item = feed.firstElementChild)) {
      var id = item.getAttribute("data-group");
      var added = Number(item.getAttribute("data-count")) || 0;
      var group = document.getElementById(id);
      if (group) {
        mergeInto(group, item);
        item.remove();
      } else {
        group = item;
        group.removeAttribute("data-group");
        group.id = id;
      }
      box.insertBefore(group, box.firstElementChild);
      formatWhen(group);
      var total = document.getElementById("failure-total");
      if (total) total.textContent = String(Number(total.textContent) + added);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { formatWhen(document); take(); });
  document.addEventListener("htmx:wsAfterMessage", take);
})();
