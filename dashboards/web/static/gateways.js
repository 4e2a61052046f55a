// Scan a gateway's bus, or read one device on it, from here (and, for a manager, correct
// the time of readings taken with its clock off): POST to the commissioning API
// as the logged-in user, with the session's CSRF token (the page's <meta name="csrf-token">)
// in X-CSRF-Token; the answer (tens of seconds for a scan: the gateway's agent runs it) is
// shown under the forms as `coldchain modbus` prints it.
(function () {
  "use strict";
  const token = document.querySelector('meta[name="csrf-token"]');
  function body(form) {
    const e = form.elements;
    if (form.dataset.action === "scan") {
      return { bus: e.bus.value, units: e.units.value };
    }
    return { bus: e.bus.value, unit: Number(e.unit.value), profile: e.profile.value.trim() };
  }
  for (const form of document.querySelectorAll("form.command")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const out = form.parentElement.querySelector("pre.command-out");
      const err = form.querySelector(".err");
      const button = form.querySelector("button");
      out.hidden = true;
      button.disabled = true;
      err.textContent = "…";
      try {
        const url = "/api/gateways/" + form.dataset.gateway + "/" + form.dataset.action;
        const resp = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
          body: JSON.stringify(body(form)),
        });
        const answer = await resp.json().catch(function () { return {}; });
        if (resp.ok) {
          err.textContent = "";
          out.textContent = answer.lines.join("\n");
          out.hidden = false;
        } else {
          const detail = answer.detail;
          err.textContent = typeof detail === "string" ? detail : JSON.stringify(detail) || resp.statusText;
        }
      } finally {
        button.disabled = false;
      }
    });
  }
  // A manager corrects the time of the readings a gateway took with its clock off, by the
  // step the gateway reported (POST /api/gateways/{id}/clock-correction; audited).
  for (const form of document.querySelectorAll("form.retime")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const err = form.querySelector(".err");
      const button = form.querySelector("button");
      button.disabled = true;
      err.textContent = "…";
      try {
        const resp = await fetch("/api/gateways/" + form.dataset.gateway + "/clock-correction", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
          body: JSON.stringify({ comment: form.elements.comment.value }),
        });
        const answer = await resp.json().catch(function () { return {}; });
        if (resp.ok) {
          err.textContent = form.dataset.done.replace("%d", answer.moved).replace("%d", answer.conflicts);
        } else {
          const detail = answer.detail;
          err.textContent = typeof detail === "string" ? detail : JSON.stringify(detail) || resp.statusText;
        }
      } finally {
        button.disabled = false;
      }
    });
  }
})();
