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
  // Rooms in trouble first: app.css orders tiles by state within a site; here the sites
  // with a room in alarm, warning or offline come first, and a line above the board names
  // the rooms in alarm or warning (links) and counts each state.
  const trouble = document.getElementById("trouble");
  const WORST = ["alarm", "warning", "offline"];
  function summarize() {
    const counts = {};
    const links = [];
    for (const section of board.querySelectorAll("section.site")) {
      let bad = false;
      for (const tile of section.querySelectorAll(".tile")) {
        const state = tile.dataset.state;
        if (!WORST.includes(state)) continue;
        bad = true;
        const label = tile.querySelector(".state").textContent;
        counts[state] = counts[state] || [label, 0];
        counts[state][1] += 1;
        if (state !== "offline") {
          const a = document.createElement("a");
          a.href = tile.getAttribute("href");
          a.className = state;
          a.textContent = tile.querySelector(".name").textContent;
          links.push(a);
        }
      }
      section.classList.toggle("trouble", bad);
    }
    const parts = WORST.filter(function (s) { return counts[s]; }).map(function (s) {
      return counts[s][0] + " " + counts[s][1];
    });
    trouble.hidden = parts.length === 0;
    trouble.replaceChildren(document.createTextNode(parts.join(" · ") + (links.length ? ": " : "")), ...links);
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
      if (tile.dataset.state !== old.dataset.state) summarize();
    });
  }
  tick();
  summarize();
  setInterval(tick, 1000);
  connect();
})();
