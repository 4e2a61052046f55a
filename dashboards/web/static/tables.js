// On a phone every table shows as one card per row (app.css): each cell is labelled with
// its column's header, here, and again when a page's script replaces rows.
(function () {
  "use strict";
  function label(table) {
    const head = table.querySelector("tr");
    if (!head || !head.querySelector("th")) return;
    const names = Array.from(head.children, function (th) { return th.textContent.trim(); });
    for (const row of table.querySelectorAll("tr")) {
      if (row === head) continue;
      Array.from(row.children).forEach(function (td, i) {
        if (td.tagName === "TD" && names[i] !== undefined && td.dataset.label !== names[i]) {
          td.dataset.label = names[i];
        }
      });
    }
  }
  const tables = document.querySelectorAll("main table:not(.keep)");
  for (const table of tables) {
    label(table);
    new MutationObserver(function () { label(table); }).observe(table, { childList: true, subtree: true });
  }
})();
