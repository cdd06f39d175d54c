// The admin's round page while an operation runs: every 2 s, the page is fetched again and its progress part
// replaced, until the operation has finished. Without script, the "reload" link does the same by hand.
(function () {
  "use strict";
  var INTERVAL = 2000;
  function finished(el) { return !el || el.dataset.finished === "yes"; }
  function tick() {
    var current = document.getElementById("progress");
    if (finished(current)) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("progress");
        if (next) {
          current.dataset.finished = next.dataset.finished;
          current.innerHTML = next.innerHTML;
        }
      })
      .catch(function () { /* a missed tick: the next one tries again */ })
      .then(function () { if (!finished(document.getElementById("progress"))) { setTimeout(tick, INTERVAL); } });
  }
  setTimeout(tick, INTERVAL);
}());
