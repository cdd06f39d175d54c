// A live page (web/live_pages.py): the school's home, the district's queue. The server's feed sends a short digest
// of what the page shows whenever it changes; when it differs from the one the page was rendered with, the page is
// fetched again (its own URL, its own scope check) and its live part replaced, the keyboard focus kept, and the
// change told politely to screen readers. Without script (or EventSource) the page is the same, current when loaded.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !root.dataset.liveFeed || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var news = document.getElementById("live-news");
  var wanted = null;  // the newest digest the feed sent
  var busy = false;

  function say(text) {
    if (!news || !text) { return; }
    news.textContent = "";  // the same words twice are still a new announcement
    window.setTimeout(function () { news.textContent = text; }, 50);
  }

  function refresh() {
    if (busy) { return; }
    busy = true;
    var asked = wanted;
    fetch(root.dataset.liveSrc, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!next || !next.dataset.liveVersion) { return; }
        var focused = document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : "";
        root.innerHTML = next.innerHTML;
        root.dataset.liveVersion = next.dataset.liveVersion;
        if (focused && document.getElementById(focused)) { document.getElementById(focused).focus({ preventScroll: true }); }
        say(next.dataset.liveSays);
      })
      .catch(function () { /* a missed refresh: the next change tries again */ })
      .then(function () {
        busy = false;
        // a change that came while this one was fetched (never again for the same digest: no loop)
        if (wanted !== asked && wanted !== root.dataset.liveVersion) { refresh(); }
      });
  }

  var feed = new EventSource(root.dataset.liveFeed);
  feed.addEventListener("change", function (event) {
    wanted = event.data;
    if (wanted !== root.dataset.liveVersion) { refresh(); }
  });
  feed.addEventListener("open", function () { root.dataset.liveState = "live"; });
  feed.addEventListener("error", function () {
    root.dataset.liveState = feed.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
  });
}());
