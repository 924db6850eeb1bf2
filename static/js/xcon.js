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
  setInterval(updateAges, 500);
  // Swapped-in rows get their age at once, not on the next interval.
  document.addEventListener("htmx:wsAfterMessage", updateAges);
  document.addEventListener("DOMContentLoaded", updateAges);
})();
