// Acknowledge with a comment: POST to the alerts API as the logged-in user, with the
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
})();
