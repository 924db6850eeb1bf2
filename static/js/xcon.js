// Small page behaviour that needs no server round trip: WebSocket status and update ages.
(function () {
  "use strict";
  function setStatus(text, on) {
    var el = document.getElementById("ws-status");
    if (!el) return;
    el.textContent = text;
    el.className = "badge " + (on ? "on" : "off");
  }
  // Open is not live: the server says at once what it can really push (Redis, workers)
  // and replaces this badge (monitoring/livewatch.py).
  document.addEventListener("htmx:wsOpen", function () { setStatus("connected, checking…", false); });
  document.addEventListener("htmx:wsClose", function () { setStatus("disconnected — retrying", false); });
  document.addEventListener("htmx:wsError", function () { setStatus("connection error", false); });

  function formatAge(seconds) {
    if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h";
  }
  function updateAges() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".age[data-received]").forEach(function (td) {
      var received = parseFloat(td.dataset.received);
      if (td.dataset.latestOf) {
        // A stream's last message: the newest of its rows, which the pushes keep current.
        document.querySelectorAll(td.dataset.latestOf).forEach(function (el) {
          received = Math.max(received || 0, parseFloat(el.dataset.received) || 0);
        });
      }
      if (!(received > 0)) { td.textContent = "—"; return; }
      var age = Math.max(0, now - received);
      td.textContent = formatAge(age);
      td.classList.toggle("stale", age > 10);
    });
  }
  function updateCountdowns() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      var left = Math.max(0, parseFloat(el.dataset.until) - now);
      el.textContent = left.toFixed(0) + " s";
    });
    document.querySelectorAll(".since[data-ts]").forEach(function (el) {
      el.textContent = "(last " + formatAge(Math.max(0, now - parseFloat(el.dataset.ts))) + " ago)";
    });
  }
  // Unified symbols carry the venue's own names on hover (Kraken: pair id, altname, wsname),
  // from the panel's map (exchanges/watchlist.py); pushed rows get theirs once swapped in.
  function venueTitles() {
    document.querySelectorAll("section[data-venue-names]").forEach(function (panel) {
      var names;
      try { names = JSON.parse(panel.dataset.venueNames || "{}"); } catch (e) { return; }
      panel.querySelectorAll(".sym:not([title])").forEach(function (el) {
        var title = names[el.textContent.trim()];
        if (title) el.title = title;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", venueTitles);
  document.addEventListener("htmx:wsAfterMessage", venueTitles);
  setInterval(updateAges, 500);
  setInterval(updateCountdowns, 500);
  document.addEventListener("htmx:wsAfterMessage", updateCountdowns);
  // Swapped-in rows get their age at once, not on the next interval.
  document.addEventListener("htmx:wsAfterMessage", updateAges);
  document.addEventListener("DOMContentLoaded", updateAges);
  // Latency of ticker pushes as this page sees them; the worker's own stages (venue -> worker
  // -> pushed) arrive drawn in the stream rows. Stamps are server time, "now" is this
  // computer's clock: across machines, their offset adds to (or hides in) these numbers.
  var lat = {};  // account id -> samples and sparkline points
  var WINDOW_S = 30, POINT_S = 5, POINTS = 60, MAX_SAMPLES = 20000;
  var TOPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  function pct(sorted, q) { return sorted[Math.max(0, Math.ceil(q / 100 * sorted.length) - 1)]; }
  function p5099(values) {
    if (!values.length) return null;
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    return [pct(sorted, 50), pct(sorted, 99)];
  }
  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    var msg = e.detail && e.detail.message;
    if (typeof msg !== "string" || msg.indexOf("data-pub=") < 0) return;
    var now = Date.now() / 1000;
    var acct = /id="tk-(\d+)-/.exec(msg), pub = /data-pub="([\d.]+)"/.exec(msg);
    if (!acct || !pub) return;
    var s = lat[acct[1]] || (lat[acct[1]] = { pub: [], e2e: [], interval: [], points: [], pointAt: now });
    var ms = (now - parseFloat(pub[1])) * 1000;
    s.pub.push([now, ms]);
    s.interval.push(ms);
    var re = /data-ev="([\d.]+)"/g, m;
    while ((m = re.exec(msg)) && s.e2e.length < MAX_SAMPLES) s.e2e.push([now, (now - parseFloat(m[1])) * 1000]);
  });
  function recent(samples, now) {
    while (samples.length && samples[0][0] < now - WINDOW_S) samples.shift();
    return samples.map(function (x) { return x[1]; });
  }
  function fmt(p) { return p ? p[0].toFixed(1) + " / " + p[1].toFixed(1) + " ms" : "—"; }
  // As monitoring/latency.py sparkline(): newest point at the right edge, 5 min wide.
  function polyline(values, top) {
    var step = 96 / (POINTS - 1), offset = POINTS - values.length, out = [];
    values.forEach(function (v, i) {
      if (v == null) return;
      out.push(((offset + i) * step).toFixed(1) + "," + (20 - Math.min(v, top) / top * 19 - 0.5).toFixed(1));
    });
    return out.join(" ");
  }
  function updateLatency() {
    var now = Date.now() / 1000;
    Object.keys(lat).forEach(function (acct) {
      var s = lat[acct], el = document.getElementById("latb-" + acct);
      if (now - s.pointAt >= POINT_S) {
        s.pointAt = now;
        s.points.push(p5099(s.interval) || [null, null]);
        s.interval = [];
        if (s.points.length > POINTS) s.points.shift();
      }
      if (!el) return;
      el.querySelector(".lat-pub").textContent = fmt(p5099(recent(s.pub, now)));
      el.querySelector(".lat-e2e").textContent = fmt(p5099(recent(s.e2e, now)));
      var highest = Math.max.apply(null, s.points.map(function (p) { return p[1] || 0; }).concat([0]));
      var top = TOPS.filter(function (t) { return t >= highest; })[0] || highest;
      el.querySelector("polyline.p50").setAttribute("points", polyline(s.points.map(function (p) { return p[0]; }), top));
      el.querySelector("polyline.p99").setAttribute("points", polyline(s.points.map(function (p) { return p[1]; }), top));
      el.querySelector("svg").setAttribute("aria-label", "p50 and p99 over the last 5 minutes, scale 0 to " + top + " ms");
    });
  }
  setInterval(updateLatency, 1000);

  // A symbol link in the ticker table opens that symbol's book.
  function openBook() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", openBook);
  document.addEventListener("DOMContentLoaded", openBook);
})();
