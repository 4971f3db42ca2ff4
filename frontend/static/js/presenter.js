/* celery-live presenter mode (stream/presenter.py; frames in docs/api.md, "Presenter socket").
 *
 * Every page opens /ws/present/ with its tab's seat (kept in sessionStorage, so the tab
 * stays the presenter, or a follower, across the presentation's page loads) and shows:
 * - nobody presents: a "Present" button, to users who may launch;
 * - this tab presents: "You are presenting · n watching · Stop presenting"; each page it
 *   opens, and each click on a highlightable element (data-present-highlight, a run card),
 *   is sent to the followers;
 * - this tab follows: it goes where the presenter goes and outlines what they point at;
 * - else: "<name> is presenting · n watching · Follow".
 * Everything shown comes from the server as text (textContent only).
 */
(function () {
  "use strict";
  var SEAT_KEY = "celery-live:present-seat";
  var WENT_KEY = "celery-live:present-went";
  var NO_RETRY = [4400, 4401, 4403]; // a bad request, or login mode refused this user
  var HIGHLIGHT_MS = 4000;
  var bar = document.getElementById("presenter");
  if (!bar || !window.WebSocket) return;

  var socket = null;
  var state = null; // the last "state" frame
  var pinger = null;
  var retries = 0;

  function seat() {
    var value = null;
    try { value = sessionStorage.getItem(SEAT_KEY); } catch (e) { /* storage off: a seat per page */ }
    if (!value) {
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      value = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { sessionStorage.setItem(SEAT_KEY, value); } catch (e) { /* as above */ }
    }
    return value;
  }

  function here() {
    return window.location.pathname + window.location.search;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function part(selector) {
    return bar.querySelector(selector);
  }

  function show(action, visible) {
    part('[data-present-action="' + action + '"]').hidden = !visible;
  }

  function render() {
    var role = state.role;
    var presenter = state.presenter;
    var name = presenter && presenter.name ? presenter.name : "Someone";
    var text = "";
    if (role === "presenter") text = "You are presenting";
    else if (role === "follower") text = "Following " + name;
    else if (presenter) text = name + " is presenting";
    part(".presenter__text").textContent = text;
    part(".presenter__count").textContent = presenter ? state.watching + " watching" : "";
    show("present", !presenter && state.can_present);
    show("follow", !!presenter && role === "viewer");
    show("stop", role === "presenter");
    show("unfollow", role === "follower");
    bar.classList.toggle("presenter--idle", !presenter);
    bar.hidden = !presenter && !state.can_present;
  }

  function error(text) {
    part(".presenter__error").textContent = text || "";
  }

  // A path of this site only: the server checks it too, this is the page's own guard.
  function sameOrigin(path) {
    try {
      return typeof path === "string" && path.charAt(0) === "/" && new URL(path, window.location.href).origin === window.location.origin;
    } catch (e) {
      return false;
    }
  }

  // To the presenter's page. Catching up from a state frame goes to a path once per tab, so
  // a page that lands elsewhere (a redirect) does not bounce for ever.
  function go(path, catchingUp) {
    if (!sameOrigin(path) || path === here()) return;
    var went = null;
    try { went = sessionStorage.getItem(WENT_KEY); } catch (e) { /* storage off */ }
    if (catchingUp && went === path) return;
    try { sessionStorage.setItem(WENT_KEY, path); } catch (e) { /* storage off */ }
    window.location.assign(path);
  }

  function find(target) {
    var marked = document.querySelectorAll("[data-present-highlight]");
    for (var i = 0; i < marked.length; i++) {
      if (marked[i].getAttribute("data-present-highlight") === target) return marked[i];
    }
    return document.getElementById(target);
  }

  // Outline `element` for a while; on a follower's page, bring it into view first.
  function flash(element, scroll) {
    if (scroll) element.scrollIntoView({ block: "center", behavior: "smooth" });
    element.classList.add("present-highlight");
    clearTimeout(element.presentTimer);
    element.presentTimer = setTimeout(function () { element.classList.remove("present-highlight"); }, HIGHLIGHT_MS);
  }

  function ping(on) {
    clearInterval(pinger);
    pinger = on ? setInterval(function () { send({ action: "ping" }); }, state.ping_interval * 1000) : null;
  }

  function onFrame(frame) {
    if (frame.type === "state") {
      var was = state ? state.role : null;
      state = frame;
      render();
      ping(frame.role !== "viewer");
      // The presenter's page says where it is on each load; a follower catches up with it.
      if (frame.role === "presenter" && was !== "presenter") send({ action: "navigate", path: here() });
      if (frame.role === "follower" && frame.presenter && frame.presenter.path) go(frame.presenter.path, true);
    } else if (frame.type === "navigate") {
      go(frame.path);
    } else if (frame.type === "highlight") {
      var element = find(frame.target);
      if (element) flash(element, true);
    } else if (frame.type === "ended") {
      error(frame.reason);
    } else if (frame.type === "error" || frame.error) {
      error(frame.error);
    }
  }

  function connect() {
    var url = new URL(bar.getAttribute("data-socket"), window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("seat", seat());
    socket = new WebSocket(url.toString());
    socket.onopen = function () { retries = 0; };
    socket.onmessage = function (evt) {
      var frame;
      try { frame = JSON.parse(evt.data); } catch (e) { return; }
      onFrame(frame);
    };
    socket.onclose = function (evt) {
      ping(false);
      if (NO_RETRY.indexOf(evt.code) !== -1) {
        bar.hidden = true;
        return;
      }
      retries += 1;
      setTimeout(connect, Math.min(1000 * retries, 15000) + Math.random() * 500);
    };
  }

  bar.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-present-action]");
    if (!button) return;
    error("");
    var action = button.getAttribute("data-present-action");
    if (action === "follow") {
      try { sessionStorage.removeItem(WENT_KEY); } catch (e) { /* storage off */ }
    }
    send(action === "present" ? { action: action, path: here() } : { action: action });
  });

  // The presenter's pointing: a highlightable element, or a run card, clicked.
  document.addEventListener("click", function (evt) {
    if (!state || state.role !== "presenter" || bar.contains(evt.target)) return;
    var element = evt.target.closest("[data-present-highlight], .run[data-task-id]");
    if (!element) return;
    var target = element.getAttribute("data-present-highlight") || element.id;
    if (target) send({ action: "highlight", target: target });
    flash(element, false);
  }, true);

  connect();
})();
