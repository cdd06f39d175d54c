// The admin's round page while a start or an extension runs: every 2 s its progress part is fetched again (two counts
// of the projection, web/admin_pages.py `admin_round_progress_part`) and replaced, until it has finished; a screen
// reader hears each quarter and the end. A count that stops moving for a minute stops the polling: the "reload"
// link (the one way without script too) asks the operation itself. Nothing is polled once the part says finished.
(function () {
  "use strict";
  var INTERVAL = 2000, PATIENCE = 30;  // polls without a change before giving up
  var news = document.getElementById("progress-news");
  var still = 0, told = -1;

  function current() { return document.getElementById("progress"); }
  function finished(el) { return !el || el.dataset.finished === "yes"; }
  function quarter(el) {
    var n = Number(el.dataset.n) || 0;
    return finished(el) ? 4 : (n ? Math.floor(4 * Number(el.dataset.done) / n) : 0);
  }
  function tell(el) {
    var q = quarter(el);
    if (news && q !== told && told !== -1) {
      var parts = [document.getElementById("progress-state"), document.getElementById("progress-count")];
      news.textContent = parts.map(function (p) { return p ? p.textContent.trim() : ""; }).join(" ");
    }
    told = q;
  }

  function tick() {
    var el = current();
    if (finished(el) || !el.dataset.src) { return; }
    fetch(el.dataset.src, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("progress");
        if (!next) { return; }
        still = next.dataset.done === el.dataset.done ? still + 1 : 0;
        ["finished", "done", "n", "src"].forEach(function (k) { el.dataset[k] = next.dataset[k] || ""; });
        el.innerHTML = next.innerHTML;
        tell(el);
      })
      .catch(function () { /* a missed tick: the next one tries again */ })
      .then(function () { if (!finished(current()) && still < PATIENCE) { setTimeout(tick, INTERVAL); } });
  }
  if (current()) { tell(current()); }
  setTimeout(tick, INTERVAL);
}());
