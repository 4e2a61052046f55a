// Scan a gateway's bus, or read one device on it, from here; provision, rotate, retire or
// revoke its broker identity (and, for a manager, correct the time of readings taken with
// its clock off): POST to the commissioning API
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
  // The gateways' broker identities: listed from GET /api/gateway-identities (the broker's
  // dynamic security plugin), each button enabled where its action applies. Provision and
  // rotate answer with the gateway's bundle, saved as a download; retire and revoke ask
  // first. Each is audited by the hub.
  const status = document.getElementById("identity-status");
  function detailOf(answer, resp) {
    const detail = answer.detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail) || resp.statusText;
  }
  async function identities() {
    const resp = await fetch("/api/gateway-identities");
    const answer = await resp.json().catch(function () { return {}; });
    if (!resp.ok) {
      status.textContent = detailOf(answer, resp);
      status.hidden = false;
      for (const span of document.querySelectorAll("td.identity .clients")) span.textContent = "—";
      return;
    }
    status.hidden = true;
    for (const form of document.querySelectorAll("form.identity")) {
      const clients = answer[form.dataset.gateway] || [];
      const span = form.parentElement.querySelector(".clients");
      span.textContent = clients.length ? clients.join(", ") : span.dataset.none;
      const allowed = {
        provision: clients.length === 0,
        rotate: clients.length > 0,
        retire: clients.length > 1,
        revoke: clients.length > 0,
      };
      for (const b of form.querySelectorAll("button")) b.disabled = !allowed[b.value];
    }
  }
  for (const form of document.querySelectorAll("form.identity")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const action = ev.submitter ? ev.submitter.value : "";
      const ask = { revoke: form.dataset.confirmRevoke, retire: form.dataset.confirmRetire }[action];
      if (!action || (ask && !window.confirm(ask))) return;
      const err = form.querySelector(".err");
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      err.textContent = "…";
      try {
        const resp = await fetch("/api/gateways/" + form.dataset.gateway + "/" + action, {
          method: "POST",
          headers: { "X-CSRF-Token": token ? token.content : "" },
        });
        if (!resp.ok) {
          err.textContent = detailOf(await resp.json().catch(function () { return {}; }), resp);
        } else if ((resp.headers.get("Content-Type") || "").startsWith("application/gzip")) {
          const named = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
          const name = named ? named[1] : "bundle.tar.gz";
          const link = document.createElement("a");
          link.href = URL.createObjectURL(await resp.blob());
          link.download = name;
          document.body.appendChild(link);
          link.click();
          link.remove();
          err.textContent = form.dataset.bundle.replace("%s", name);
        } else {
          err.textContent = "";
        }
      } finally {
        await identities();
      }
    });
  }
  if (document.querySelector("form.identity")) identities();

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
