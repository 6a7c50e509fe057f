// Closeout web console: live updates (server-sent events) and keyboard
// shortcuts for the reconciliation review. Pages work without it.
(function () {
  "use strict";
  var body = document.body;

  function refresh() {
    fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (text) {
      if (!text) { return; }
      var doc = new DOMParser().parseFromString(text, "text/html");
      var fresh = doc.getElementById("main");
      var main = document.getElementById("main");
      if (fresh && main) {
        main.innerHTML = fresh.innerHTML;
        var status = document.getElementById("live-status");
        if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
        setupReview();
      }
    });
  }

  function setupLive() {
    var live = body.getAttribute("data-live");
    if (live === null || !window.EventSource) { return; }
    var since = body.getAttribute("data-rendered-at") || "0";
    var source = new EventSource("/events?" + live + "&since=" + encodeURIComponent(since));
    var timer = null;
    source.addEventListener("item", function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(refresh, 250);
    });
    source.addEventListener("refused", function () { source.close(); });
  }

  var current = -1;
  function proposals() { return Array.prototype.slice.call(document.querySelectorAll("article.proposal")); }
  function select(index) {
    var all = proposals();
    if (all.length === 0) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (p, i) { p.classList.toggle("current", i === current); });
    all[current].focus();
  }
  function setupReview() {
    current = -1;
    if (proposals().length > 0) { select(0); }
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var all = proposals();
    if (all.length === 0) { return; }
    if (e.key === "j") { select(current + 1); e.preventDefault(); }
    else if (e.key === "k") { select(current - 1); e.preventDefault(); }
    else if (e.key === "a" && current >= 0) {
      var accept = all[current].querySelector("form.accept");
      if (accept) { e.preventDefault(); accept.submit(); }
    } else if (e.key === "r" && current >= 0) {
      var reason = all[current].querySelector("form.reject input[name=reason]");
      if (reason) { e.preventDefault(); reason.focus(); }
    }
  });

  document.addEventListener("DOMContentLoaded", function () { setupLive(); setupReview(); });
})();
