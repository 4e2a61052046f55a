// Scan a gateway's bus from here: POST to the commissioning API as the logged-in user, with
// the session's CSRF token (the page's <meta name="csrf-token">) in X-CSRF-Token; the answer
// (tens of seconds: the gateway's agent runs the scan) is shown under the form as
// `coldchain modbus scan` prints it.
(function () {
  "use strict";
  const token = document.querySelector('meta[name="csrf-token"]');
  for (const form of document.querySelectorAll("form.scan")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const out = form.nextElementSibling;
      const err = form.querySelector(".err");
      const button = form.querySelector("button");
      err.textContent = "";
      out.hidden = true;
      button.disabled = true;
      err.textContent = "…";
      try {
        const resp = await fetch("/api/gateways/" + form.dataset.gateway + "/scan", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
          body: JSON.stringify({ bus: form.elements.bus.value, units: form.elements.units.value }),
        });
        const body = await resp.json().catch(function () { return {}; });
        if (resp.ok) {
          err.textContent = "";
          out.textContent = body.lines.join("\n");
          out.hidden = false;
        } else {
          const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
          err.textContent = detail || resp.statusText;
        }
      } finally {
        button.disabled = false;
      }
    });
  }
})();
