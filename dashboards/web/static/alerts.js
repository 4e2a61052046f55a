// Acknowledge with a comment, and sign: POST to the API as the logged-in user, with the
// session's CSRF token (the page's <meta name="csrf-token">) in X-CSRF-Token.
(function () {
  "use strict";
  const token = document.querySelector('meta[name="csrf-token"]');
  for (const form of document.querySelectorAll("form.ack")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const comment = form.elements.comment.value.trim();
      const resp = await fetch("/api/alerts/" + form.dataset.id + "/ack", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
        body: JSON.stringify({ comment: comment || null }),
      });
      if (resp.ok) {
        window.location.reload();
      } else {
        const body = await resp.json().catch(function () { return {}; });
        form.querySelector(".err").textContent = body.detail || resp.statusText;
      }
    });
  }
  // Sign (hub/signatures.py): the password again (and the authenticator's code, for a signer
  // with a second factor), the meaning, and for closing the cause and the corrective action;
  // a refusal (wrong password or code, locked) is shown by the form.
  for (const form of document.querySelectorAll("form.sign")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const body = { object: form.dataset.object, meaning: form.dataset.meaning };
      for (const name of ["password", "code", "comment", "cause", "corrective_action"]) {
        const field = form.elements[name];
        const value = field ? field.value.trim() : "";
        if (value) body[name] = name === "password" ? field.value : value;
      }
      const resp = await fetch("/api/signatures", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
        body: JSON.stringify(body),
      });
      form.elements.password.value = "";
      form.elements.code.value = "";
      if (resp.ok) {
        window.location.reload();
      } else {
        const answer = await resp.json().catch(function () { return {}; });
        const detail = answer.detail;
        form.querySelector(".err").textContent =
          typeof detail === "string" ? detail : resp.status + " " + resp.statusText;
      }
    });
  }
})();
