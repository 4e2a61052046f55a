// Acknowledge with a comment: POST to the alerts API as the logged-in user.
(function () {
  "use strict";
  for (const form of document.querySelectorAll("form.ack")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const comment = form.elements.comment.value.trim();
      const resp = await fetch("/api/alerts/" + form.dataset.id + "/ack", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
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
