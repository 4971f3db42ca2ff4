/* celery-live page glue: the little htmx cannot do by itself.
 *
 * - Every (re)connect of the page socket resends `since` = the last event id applied,
 *   so the server replays exactly what this page missed (htmx-ext-ws reuses one URL).
 * - The connection indicator (live / reconnecting), and reconnecting on *any* close:
 *   htmx-ext-ws retries only on 1006/1011/1012/1013.
 * - "Catching up…" after a reconnect until the server says the page has all it missed.
 * - Inserting list rows the page does not have yet (a new run, or one that now matches
 *   the filters), newest first: htmx reports an out-of-band swap with no target.
 * - Local times and a ticking run time for running tasks.
 */
(function () {
  "use strict";
  var RETRIED_BY_HTMX = [1006, 1011, 1012, 1013];
  var retries = 0;

  function cursor() {
    var el = document.getElementById("live-cursor");
    return el ? el.getAttribute("data-last-id") || "" : "";
  }

  htmx.createWebSocket = function (url) {
    var u = new URL(url, window.location.href);
    var since = cursor();
    if (since) u.searchParams.set("since", since);
    var status = document.getElementById("live-status");
    if (status) status.setAttribute("data-state", since ? "behind" : "live");
    var socket = new WebSocket(u.toString());
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  function setConnection(state, text) {
    var el = document.getElementById("connection");
    if (!el) return;
    el.className = "conn conn--" + state;
    el.querySelector(".conn__text").textContent = text;
    document.documentElement.setAttribute("data-connection", state);
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setConnection(retries ? "reconnecting" : "connecting", retries ? "Reconnecting…" : "Connecting…");
  });
  function showStatus() {
    var status = document.getElementById("live-status");
    if (status && status.getAttribute("data-state") === "behind") setConnection("behind", "Catching up…");
    else setConnection("live", "Live");
  }

  document.addEventListener("htmx:wsOpen", function () {
    retries = 0;
    showStatus();
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    retries += 1;
    setConnection("reconnecting", "Reconnecting…");
    var code = evt.detail.event.code;
    if (RETRIED_BY_HTMX.indexOf(code) === -1 && document.body.contains(evt.target)) {
      var delay = Math.random() * Math.min(30000, 500 * Math.pow(2, Math.min(retries, 6)));
      setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, delay);
    }
  });

  function formatTimes(root) {
    (root || document).querySelectorAll("time[data-ts]").forEach(function (el) {
      var ts = parseFloat(el.getAttribute("data-ts"));
      if (!isNaN(ts) && !el.dataset.formatted) {
        var d = new Date(ts * 1000);
        el.textContent = d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
        el.setAttribute("datetime", d.toISOString());
        el.dataset.formatted = "1";
      }
    });
  }

  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-running-since]").forEach(function (el) {
      var since = parseFloat(el.getAttribute("data-running-since"));
      if (!isNaN(since)) el.textContent = "running " + Math.max(0, now - since).toFixed(1) + " s";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { formatTimes(); tick(); });
  document.addEventListener("htmx:wsAfterMessage", function () { formatTimes(); tick(); showStatus(); });

  document.addEventListener("htmx:oobErrorNoTarget", function (evt) {
    var row = evt.detail.content;
    var boxId = row && row.getAttribute && row.getAttribute("data-upsert");
    var box = boxId && document.getElementById(boxId);
    if (!box) return;
    var first = parseFloat(row.getAttribute("data-first-seen")) || 0;
    var next = null;
    for (var i = 0; i < box.children.length; i++) {
      if ((parseFloat(box.children[i].getAttribute("data-first-seen")) || 0) < first) { next = box.children[i]; break; }
    }
    box.insertBefore(row, next);
    htmx.process(row);
    formatTimes(row);
  });
  document.addEventListener("htmx:afterSwap", function () { formatTimes(); });
  setInterval(tick, 200);
})();
