/* celery-live page glue: the little htmx cannot do by itself.
 *
 * - Every (re)connect of the page socket resends `since` = the last event id applied,
 *   so the server replays exactly what this page missed (htmx-ext-ws reuses one URL).
 * - Reconnecting, all of it here: on any close, the first retry within 0.5 s, then a
 *   capped backoff (5 s at most) with jitter, and at once when the tab becomes visible
 *   or the browser goes online. Close codes (README, "Live JSON"): 4409 (the log
 *   restarted) reloads the page, its snapshot; 4400 (a bad request) is not retried, nor
 *   4401/4403 (login mode: logged out, or not allowed), which link to the login page.
 * - The connection indicator (live / reconnecting / catching up).
 * - "Catching up…" after a reconnect until the server says the page has all it missed.
 * - Inserting list rows the page does not have yet (a new run, or one that now matches
 *   the filters), newest first, and dropping removals of rows it never showed, before htmx
 *   swaps the frame (the `live-rows` extension): no swap is left without its target.
 * - A run's iterations following the newest; a request the server never answered said
 *   next to its button.
 * - Local times, a ticking run time for running tasks, and how long ago each worker beat.
 */
(function () {
  "use strict";
  var BAD_REQUEST = 4400;
  var LOGIN_REQUIRED = 4401;
  var FORBIDDEN = 4403;
  var RESYNC = 4409;
  var LOGIN_URL = "/accounts/login/"; // unless the refusal's frame names the host's own
  var FIRST_RETRY_MS = 500;
  var MAX_RETRY_MS = 5000;
  var RESYNC_KEY = "celery-live:resynced-at";
  var socket = null; // the page socket made last
  var element = null; // its ws-connect element
  var link = null; // htmx-ext-ws's handle on it (reconnect)
  var retries = 0;
  var timer = null; // the pending retry
  var closing = null; // the JSON frame the server sent before closing the socket, if any

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
    var ws = new WebSocket(u.toString());
    closing = null;
    ws.binaryType = htmx.config.wsBinaryType;
    // Registered before htmx-ext-ws sets its onclose, so it runs first and stops it: the
    // extension would retry by itself on 1006/1011/1012/1013 only, on a timer that can be
    // neither hurried nor cancelled (htmx:wsClose is not fired either).
    ws.addEventListener("close", function (evt) {
      evt.stopImmediatePropagation();
      closed(ws, evt.code);
    });
    // The page's frames are HTML; a JSON one says why the server is about to close, and
    // is not for htmx (which would take it for a message and show "Live").
    ws.addEventListener("message", function (evt) {
      if (typeof evt.data !== "string" || evt.data.charAt(0) !== "{") return;
      evt.stopImmediatePropagation();
      try { closing = JSON.parse(evt.data); } catch (e) { closing = null; }
    });
    socket = ws;
    return ws;
  };

  function setConnection(state, text) {
    var el = document.getElementById("connection");
    if (!el) return;
    el.className = "conn conn--" + state;
    el.querySelector(".conn__text").textContent = text;
    document.documentElement.setAttribute("data-connection", state);
  }

  // Retry n (1, 2, ...) waits between half and all of min(5 s, 0.5 s x 1.5^(n-1)): within
  // 0.5 s, 0.75, 1.1, 1.7, 2.5, 3.8, then 5 s; the jitter spreads the pages of a server
  // that comes back. (htmx-ext-ws's own waited up to 64 s: pages came back ~10 s after
  // the server did.)
  function backoff(n) {
    var ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * Math.pow(1.5, n - 1));
    return ceiling * (0.5 + Math.random() / 2);
  }

  function closed(ws, code) {
    if (ws !== socket || !element || !document.body.contains(element)) return; // replaced, or gone
    if (code === RESYNC) return resync();
    if (code === BAD_REQUEST) {
      // The same request would be refused again: say so rather than loop.
      setConnection("error", "Disconnected: reload the page");
      return;
    }
    if (code === LOGIN_REQUIRED || code === FORBIDDEN) {
      return loginNeeded(code === LOGIN_REQUIRED ? "Logged out" : "Not allowed");
    }
    retries += 1;
    setConnection("reconnecting", "Reconnecting…");
    clearTimeout(timer);
    timer = setTimeout(reconnectNow, backoff(retries));
  }

  // Login mode refused the socket: retrying as the same user would be refused again.
  function loginNeeded(text) {
    setConnection("denied", text + " ");
    var where = document.querySelector("#connection .conn__text");
    if (!where) return;
    var url = new URL((closing && closing.login_url) || LOGIN_URL, window.location.href);
    url.searchParams.set("next", window.location.pathname + window.location.search);
    var a = document.createElement("a");
    a.href = url.href;
    a.textContent = "Log in";
    where.appendChild(a);
  }

  function reconnectNow() {
    clearTimeout(timer);
    timer = null;
    if (link) link.reconnect();
  }

  function retryNowIfWaiting() {
    if (timer !== null) reconnectNow();
  }

  // The server's log restarted (Redis lost its data): this page's ids mean nothing there.
  // A reload shows the server's state afresh with a cursor it can follow; one right after
  // another waits first, so a server that keeps answering 4409 cannot make a reload loop.
  function resync() {
    setConnection("behind", "Reloading…");
    var last = Number(window.sessionStorage.getItem(RESYNC_KEY)) || 0;
    var wait = Date.now() - last < 10000 ? MAX_RETRY_MS : 0;
    setTimeout(function () {
      window.sessionStorage.setItem(RESYNC_KEY, String(Date.now()));
      window.location.reload();
    }, wait);
  }

  // The extension's handle on the socket comes with its open and error events (an error
  // always precedes the close of a socket that never opened).
  function keepLink(evt) {
    var wrapper = evt.detail.socketWrapper;
    link = (wrapper && wrapper.publicInterface) || wrapper;
  }

  document.addEventListener("htmx:wsConnecting", function (evt) {
    element = evt.target;
    setConnection(retries ? "reconnecting" : "connecting", retries ? "Reconnecting…" : "Connecting…");
  });
  document.addEventListener("htmx:wsError", keepLink);
  function showStatus() {
    var status = document.getElementById("live-status");
    if (status && status.getAttribute("data-state") === "behind") setConnection("behind", "Catching up…");
    else setConnection("live", "Live");
  }

  document.addEventListener("htmx:wsOpen", function (evt) {
    keepLink(evt);
    retries = 0;
    showStatus();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") retryNowIfWaiting();
  });
  window.addEventListener("online", retryNowIfWaiting);

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
    // A time to come (a retry's next attempt, Beat's next run): "in 3 s", then "due now".
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var left = Math.ceil(parseFloat(el.getAttribute("data-countdown-to")) - now);
      if (isNaN(left)) return;
      var text = left <= 0 ? "due now" : left < 120 ? "in " + left + " s" : "in " + Math.ceil(left / 60) + " min";
      if (el.textContent !== text) el.textContent = text;
    });
    // A worker's last heartbeat: "2 s ago", "3 min ago".
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var ago = Math.max(0, Math.round(now - parseFloat(el.getAttribute("data-ago"))));
      if (isNaN(ago)) return;
      var text = ago < 120 ? ago + " s ago" : Math.floor(ago / 60) + " min ago";
      if (el.textContent !== text) el.textContent = text;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { formatTimes(); tick(); });
  document.addEventListener("htmx:wsAfterMessage", function () { formatTimes(); tick(); showStatus(); });

  // A row the page does not have yet goes into its box (`data-upsert`), newest first.
  function insertRow(row) {
    var box = document.getElementById(row.getAttribute("data-upsert"));
    if (!box) return;
    row.removeAttribute("hx-swap-oob");
    var first = parseFloat(row.getAttribute("data-first-seen")) || 0;
    var next = null;
    for (var i = 0; i < box.children.length; i++) {
      if ((parseFloat(box.children[i].getAttribute("data-first-seen")) || 0) < first) { next = box.children[i]; break; }
    }
    box.insertBefore(row, next);
    htmx.process(row);
    formatTimes(row);
  }

  // Before htmx swaps a frame, every swap in it finds its target: a new row is inserted
  // here, and the removal of a row this page does not show (a run that does not match
  // its filters) is dropped. htmx would log an error for each (htmx:oobErrorNoTarget).
  // <body hx-ext="live-rows"> puts every socket of the page under it.
  htmx.defineExtension("live-rows", {
    transformResponse: function (text) {
      if (text.indexOf("data-upsert") < 0 && text.indexOf('hx-swap-oob="delete"') < 0) return text;
      var frame = document.createElement("template");
      frame.innerHTML = text;
      var changed = false;
      Array.prototype.slice.call(frame.content.children).forEach(function (part) {
        if (!part.id || document.getElementById(part.id)) return;
        if (part.getAttribute("hx-swap-oob") === "delete") part.remove();
        else if (part.hasAttribute("data-upsert")) insertRow(part);
        else return;
        changed = true;
      });
      return changed ? frame.innerHTML : text;
    },
  });

  // A run's iterations follow their newest one, unless their reader scrolled up (back to
  // the bottom follows again). Scrolls this script makes are told apart by their position.
  var TAIL_SLACK_PX = 4;
  // A scroll this script did not make is the reader's: following goes on only if it left
  // the list at its bottom, as tall as the reader saw it (`seenHeight`: before an iteration
  // that landed since). Also asked before each follow, since a swap can land before the
  // reader's scroll event does (at 20 iterations/s full test runs lost the reader's
  // scroll, up and back down, once each).
  function noteReaderScroll(list) {
    if (list.autoScrollTop !== undefined && list.scrollTop !== list.autoScrollTop) {
      var height = list.seenHeight || list.scrollHeight;
      list.setAttribute("data-follow", height - list.scrollTop - list.clientHeight <= TAIL_SLACK_PX ? "1" : "0");
      list.autoScrollTop = list.scrollTop;
    }
    list.seenHeight = list.scrollHeight;
  }
  function followTail(list) {
    if (!list) return;
    noteReaderScroll(list);
    if (list.getAttribute("data-follow") === "0") return;
    list.scrollTop = list.scrollHeight;
    list.autoScrollTop = list.scrollTop;
  }
  function followAll(root) {
    (root || document).querySelectorAll(".run__iterations").forEach(followTail);
  }
  document.addEventListener("scroll", function (evt) {
    var list = evt.target;
    if (list.classList && list.classList.contains("run__iterations")) noteReaderScroll(list);
  }, true);
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = evt.detail.target;
    if (target && target.classList && target.classList.contains("run__iterations")) followTail(target);
    else if (target && target.id === "runs") followAll(target);
  });

  // A request the server never answered ("Run task" while it is down), or answered with an
  // error htmx does not swap: said next to what sent it, until its next request succeeds.
  var SEND_FAILED = "Could not reach the server: nothing was sent. Is it running?";
  // The note sits after the form's submit button, or after a button outside any form.
  function sendErrorNote(source, create) {
    var form = source.closest("form");
    var anchor = form ? form.querySelector("[type=submit]") || form.lastElementChild : source;
    var next = anchor && anchor.nextElementSibling;
    if (next && next.classList.contains("send-error")) return next;
    if (!create || !anchor) return null;
    var note = document.createElement("p");
    note.className = "send-error";
    note.setAttribute("role", "alert");
    anchor.insertAdjacentElement("afterend", note);
    return note;
  }
  function requestFailed(evt) {
    var source = evt.detail.elt;
    if (!source || !source.isConnected) return;
    var xhr = evt.detail.xhr;
    var note = sendErrorNote(source, true);
    if (!note) return;
    note.textContent = evt.type === "htmx:sendError" || !xhr || !xhr.status
      ? SEND_FAILED
      : "The server answered " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") + ": try again.";
  }
  document.addEventListener("htmx:sendError", requestFailed);
  document.addEventListener("htmx:responseError", requestFailed);
  document.addEventListener("htmx:afterRequest", function (evt) {
    var source = evt.detail.elt;
    var note = evt.detail.successful && source && source.isConnected && sendErrorNote(source, false);
    if (note) note.remove();
  });

  document.addEventListener("htmx:afterSwap", function () { formatTimes(); });
  document.addEventListener("DOMContentLoaded", function () { followAll(); });
  setInterval(tick, 200);
})();
