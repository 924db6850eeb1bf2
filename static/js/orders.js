// Order desk behaviour without a server round trip: one click takes a suggested value, and
// fields the chosen order type does not use are hidden.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button.suggest");
    if (!btn) return;
    var form = document.getElementById("order-form");
    var input = form && form.querySelector('[name="' + btn.dataset.field + '"]');
    if (!input) return;
    input.value = btn.dataset.value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.focus();
  });
  function syncType() {
    var form = document.getElementById("order-form");
    if (!form) return;
    var type = form.querySelector('[name="type"]').value;
    form.classList.toggle("type-market", type === "market");
    form.classList.toggle("type-stop", type === "stop_loss_limit" || type === "take_profit_limit");
    form.classList.toggle("type-maker", type === "limit_maker");
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.name === "type") syncType();
  });
  document.addEventListener("DOMContentLoaded", syncType);
  function setStatus(text, on) {
    var el = document.getElementById("ws-status");
    if (!el) return;
    el.textContent = text;
    el.className = "badge " + (on ? "on" : "off");
  }
  document.addEventListener("htmx:wsOpen", function () { setStatus("live order updates on", true); });
})();
