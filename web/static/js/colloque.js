// Colloque's only script: htmx glue. No inline script anywhere, so a strict CSP can apply.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // The last live event this page applied; every fragment moves it (#live-cursor).
  function cursor() {
    var element = document.getElementById("live-cursor");
    return element ? element.getAttribute("data-after") : "";
  }

  function withCursor(url) {
    var base = url.split("?")[0];
    var after = cursor();
    return after ? base + "?after=" + encodeURIComponent(after) : base;
  }

  // Reconnections resume from what the page has actually applied, never from the URL the
  // page was first rendered with: nothing missed, nothing applied twice.
  if (window.htmx) {
    htmx.createEventSource = function (url) {
      return new EventSource(withCursor(url), { withCredentials: true });
    };
    htmx.createWebSocket = function (url) {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var path = withCursor(url);
      return new WebSocket(path.indexOf("ws") === 0 ? path : scheme + location.host + path);
    };
  }

  function setLiveState(state) {
    var status = document.getElementById("live-status");
    if (!status) { return; }
    status.setAttribute("data-state", state);
    status.textContent = status.getAttribute(state === "live" ? "data-text-live" : "data-text-reconnecting");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  document.addEventListener("htmx:sseOpen", function () { setLiveState("live"); });
  document.addEventListener("htmx:wsOpen", function () { setLiveState("live"); });
  document.addEventListener("htmx:sseError", function () { setLiveState("reconnecting"); });
  document.addEventListener("htmx:wsClose", function () { setLiveState("reconnecting"); });
  document.addEventListener("htmx:wsError", function () { setLiveState("reconnecting"); });

  // A message may reach the page twice (the form's answer and the live stream, or a replay
  // after a reconnect): an element whose id is already on the page is not added again.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    // Replacements (outerHTML) arrive as a DocumentFragment and are idempotent already.
    if (!fragment || fragment.nodeType === 11 || !fragment.children) { return; }
    Array.prototype.slice.call(fragment.children).forEach(function (child) {
      if (child.id && document.getElementById(child.id)) { child.remove(); }
    });
  });

  // The tab that logs out is already on its way to the login page.
  var leaving = false;
  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches('form[action="/logout"]')) { leaving = true; }
  });

  document.addEventListener("htmx:oobAfterSwap", function () {
    var reset = document.getElementById("live-reset");
    if (reset && reset.hasAttribute("data-login")) {
      if (!leaving) { location.assign("/login"); }
      return;
    }
    // The server could not replay everything that was missed: reload the page's parts.
    if (reset && reset.hasAttribute("data-reload")) { location.reload(); return; }
    // "... is typing" fades when no new keystroke arrives.
    document.querySelectorAll("[data-ephemeral]").forEach(function (note) {
      note.removeAttribute("data-ephemeral");
      setTimeout(function () { note.textContent = ""; }, 6000);
    });
  });

  // Empty the message box once the server has stored the message.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form[data-reset-on-success]")) {
      form.reset();
      var error = form.querySelector("#message-error");
      if (error) { error.textContent = ""; }
    }
  });
})();
