// Small page behaviour that needs no server round trip: WebSocket status and update ages.
(function () {
  "use strict";
  function setStatus(text, on) {
    var el = document.getElementById("ws-status");
    if (!el) return;
    el.textContent = text;
    el.className = "badge " + (on ? "on" : "off");
  }
  document.addEventListener("htmx:wsOpen", function () { setStatus("live updates on", true); });
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
    document.querySelectorAll("td.age[data-received]").forEach(function (td) {
      var received = parseFloat(td.dataset.received);
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
  setInterval(updateAges, 500);
  setInterval(updateCountdowns, 500);
  document.addEventListener("htmx:wsAfterMessage", updateCountdowns);
  // Swapped-in rows get their age at once, not on the next interval.
  document.addEventListener("htmx:wsAfterMessage", updateAges);
  document.addEventListener("DOMContentLoaded", updateAges);
})();
