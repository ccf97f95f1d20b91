// erbench leaderboard: draws the plotly figures embedded as JSON, sorts and filters the index table.
"use strict";

function drawFigures() {
  const node = document.getElementById("figures");
  if (!node || !window.Plotly) return;
  const figs = JSON.parse(node.textContent);
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  for (const div of document.querySelectorAll("[data-fig]")) {
    const spec = figs[div.dataset.fig];
    if (!spec) continue;
    div.style.height = `${spec.layout.height || 400}px`;
    Plotly.newPlot(div, spec.data, spec.layout, config);
    div.on("plotly_click", (ev) => {
      const url = ev.points[0] && ev.points[0].customdata;
      if (typeof url === "string") window.location.href = url;
    });
  }
}

function sortKey(row, i, numeric) {
  const td = row.cells[i];
  if (numeric) return td.dataset.v ? parseFloat(td.dataset.v) : null;
  return (td.dataset.v ?? td.textContent).trim().toLowerCase() || null;
}

function setupBoard() {
  const table = document.getElementById("board");
  if (!table) return;
  const body = table.tBodies[0];
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, i) => {
    th.querySelector("button").addEventListener("click", () => {
      const asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach((h) => h.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      const numeric = th.classList.contains("num");
      const rows = Array.from(body.rows).map((r) => [sortKey(r, i, numeric), r]);
      rows.sort(([x], [y]) => {
        if (x === null || y === null) return (x === null) - (y === null); // missing values always last
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      const frag = document.createDocumentFragment();
      rows.forEach(([, r]) => frag.appendChild(r));
      body.appendChild(frag);
    });
  });

  const form = document.getElementById("filters");
  const column = (key) => heads.findIndex((h) => h.dataset.key === key);
  const idColumn = column("id");
  const apply = () => {
    const query = form.querySelector("#search").value.trim().toLowerCase();
    const completeOnly = form.querySelector("#complete-only").checked;
    const criteria = Array.from(form.querySelectorAll("select[data-col]"))
      .filter((s) => s.value).map((s) => [column(s.dataset.col), s.value]);
    let shown = 0;
    for (const r of body.rows) {
      const ok = criteria.every(([i, v]) => (r.cells[i].dataset.v ?? r.cells[i].textContent).trim() === v)
        && (!query || r.cells[idColumn].textContent.toLowerCase().includes(query))
        && (!completeOnly || !r.classList.contains("incomplete"));
      r.hidden = !ok;
      shown += ok;
    }
    form.querySelector("#shown").textContent = `${shown} of ${body.rows.length} shown`;
  };
  form.addEventListener("input", apply);
  form.addEventListener("submit", (ev) => ev.preventDefault());
}

document.addEventListener("DOMContentLoaded", () => {
  setupBoard();
  drawFigures();
});
