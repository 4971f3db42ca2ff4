/* The tour's architecture diagram and event feed: what htmx cannot do by itself.
 *
 * - A run's dot moves between stages by a CSS transition. htmx-ext-ws settles an
 *   out-of-band swap at once (the new element gets its new class in the same task as it
 *   is inserted), so a swapped dot would jump: for a dot already on the page, its new
 *   attributes and text are copied onto it instead, and its marker slides.
 * - A finished dot fades out (CSS) and is then removed; at most `data-cap` dots are
 *   shown, with "+n more" for the rest.
 * - The feed keeps its newest `data-cap` items.
 */
(function () {
  "use strict";

  function morphDot(target, incoming) {
    Array.prototype.forEach.call(incoming.attributes, function (attr) {
      if (attr.name !== "hx-swap-oob") target.setAttribute(attr.name, attr.value);
    });
    // Everything but the marker is text the server rendered (escaped); the marker stays,
    // so its position can transition.
    Array.prototype.forEach.call(incoming.children, function (child) {
      if (child.classList.contains("dot__marker")) return;
      var old = target.querySelector(":scope > ." + child.classList[0]);
      if (old) old.replaceWith(child.cloneNode(true));
    });
  }

  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || !target.classList || !target.classList.contains("dot")) return;
    var incoming = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    if (!incoming) return;
    evt.detail.shouldSwap = false;
    morphDot(target, incoming);
  });

  function trim() {
    var dots = document.getElementById("diagram-dots");
    if (dots) {
      var cap = parseInt(dots.getAttribute("data-cap"), 10) || 30;
      var extra = Math.max(0, dots.children.length - cap);
      for (var i = 0; i < dots.children.length; i++) dots.children[i].hidden = i >= cap;
      var more = document.getElementById("diagram-more");
      if (more) {
        more.hidden = extra === 0;
        more.textContent = extra ? "+" + extra + " more" : "";
      }
    }
    var feed = document.getElementById("event-feed");
    if (feed) {
      var keep = parseInt(feed.getAttribute("data-cap"), 10) || 50;
      while (feed.children.length > keep) feed.lastElementChild.remove();
    }
  }

  document.addEventListener("animationend", function (evt) {
    if (evt.animationName === "dot-leave" && evt.target.classList.contains("dot")) {
      evt.target.remove();
      trim();
    }
  });
  document.addEventListener("htmx:wsAfterMessage", trim);
})();
