// The live board: tiles replaced as the hub sends them (server-sent events), ages ticking.
(function () {
  "use strict";
  const board = document.getElementById("board");
  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "min";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0");
    return Math.floor(s / 86400) + "d";
  }
  function tick(root) {
    const now = Date.now();
    for (const el of (root || document).querySelectorAll(".age[data-ts]")) {
      el.textContent = fmtAge(now - Number(el.dataset.ts));
    }
  }
  function connect() {
    const es = new EventSource("/events");
    es.onopen = function () { board.dataset.live = "1"; };
    es.onerror = function () { board.dataset.live = "0"; };
    es.addEventListener("tile", function (ev) {
      const msg = JSON.parse(ev.data);
      const [site, room] = msg.key.split("/");
      const old = document.getElementById("tile-" + site + "--" + room);
      if (!old) return;
      const tmp = document.createElement("div");
      tmp.innerHTML = msg.html;
      const tile = tmp.firstElementChild;
      old.replaceWith(tile);
      tick(tile);  // only this tile: the 1 s interval ticks the others
    });
  }
  tick();
  setInterval(tick, 1000);
  connect();
})();
