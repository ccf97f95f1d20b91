// erbench leaderboard: draws the embedded plotly figures, sorts and filters a board, keeps the view in the
// URL (?q=&<filter>=&complete=1&sort=key:dir&ids=a,b) and draws the compare view. It only shows numbers
// the build wrote into the page; it computes none.
"use strict";

const params = () => new URLSearchParams(window.location.search);
const narrow = () => window.matchMedia("(max-width: 700px)").matches;
const plotConfig = () => ({ displaylogo: false, responsive: true, displayModeBar: narrow() ? false : "hover",
  modeBarButtonsToRemove: ["select2d", "lasso2d"] });
const drawn = new Map(); // div -> the figure spec as built

function setQuery(p) {
  const query = p.toString();
  history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
  for (const a of document.querySelectorAll("a[data-keep-query]")) {
    a.search = a.id === "compare-link" ? (p.get("ids") ? `ids=${p.get("ids")}` : "") : query;
  }
}

function drawFigures() {
  const node = document.getElementById("figures");
  if (!node || !window.Plotly) return;
  const figs = JSON.parse(node.textContent);
  for (const div of document.querySelectorAll("[data-fig]")) {
    const spec = figs[div.dataset.fig];
    if (!spec) continue;
    div.style.height = `${spec.layout.height || 400}px`;
    Plotly.newPlot(div, spec.data, spec.layout, plotConfig());
    drawn.set(div, spec);
    if (document.getElementById("board")) {
      div.on("plotly_click", (ev) => {
        const id = ev.points[0] && ev.points[0].customdata;
        if (typeof id === "string") window.location.href = `s/${id}.html`;
      });
    }
  }
}

// Keep only the points of entries in `shown` (traces carry the entry id in customdata).
function filterFigures(shown) {
  for (const [div, spec] of drawn) {
    const data = spec.data.map((t) => {
      if (!Array.isArray(t.customdata)) return t;
      const keep = t.customdata.map((id) => shown.has(id));
      const pick = (a) => (Array.isArray(a) && a.length === keep.length ? a.filter((_, i) => keep[i]) : a);
      const out = { ...t, x: pick(t.x), y: pick(t.y), text: pick(t.text), customdata: pick(t.customdata) };
      if (t.error_x) out.error_x = { ...t.error_x, array: pick(t.error_x.array), arrayminus: pick(t.error_x.arrayminus) };
      return out;
    });
    Plotly.react(div, data, spec.layout, plotConfig());
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
  const heads = Array.from(table.tHead.rows[0].cells);
  const bodies = Array.from(table.tBodies).filter((b) => b.dataset.group);
  const rows = bodies.flatMap((b) => Array.from(b.rows));
  const form = document.getElementById("filters");
  const selects = Array.from(form.querySelectorAll("select[data-col]"));
  const search = form.querySelector("#search");
  const completeOnly = form.querySelector("#complete-only");
  const picks = Array.from(table.querySelectorAll("input.pick"));
  const column = (key) => heads.findIndex((h) => h.dataset.key === key);
  let sort = null; // [key, "ascending" | "descending"]

  const sortBy = (key, dir) => {
    const i = column(key);
    if (i < 0) return;
    sort = [key, dir];
    heads.forEach((h) => h.setAttribute("aria-sort", "none"));
    heads[i].setAttribute("aria-sort", dir);
    const numeric = heads[i].classList.contains("num");
    for (const body of bodies) { // groups never mix: each sorts on its own
      const keyed = Array.from(body.rows).map((r) => [sortKey(r, i, numeric), r]);
      keyed.sort(([x], [y]) => {
        if (x === null || y === null) return (x === null) - (y === null); // missing values always last
        return (x < y ? -1 : x > y ? 1 : 0) * (dir === "ascending" ? 1 : -1);
      });
      keyed.forEach(([, r]) => body.appendChild(r));
    }
  };

  const state = () => {
    const p = params();
    for (const k of ["q", "complete", "sort", "ids", ...selects.map((s) => s.dataset.col)]) p.delete(k);
    if (search.value.trim()) p.set("q", search.value.trim());
    selects.filter((s) => s.value).forEach((s) => p.set(s.dataset.col, s.value));
    if (completeOnly.checked) p.set("complete", "1");
    if (sort) p.set("sort", `${sort[0]}:${sort[1] === "ascending" ? "asc" : "desc"}`);
    const ids = picks.filter((c) => c.checked).map((c) => c.value);
    if (ids.length) p.set("ids", ids.join(","));
    document.getElementById("n-selected").textContent = ids.length;
    setQuery(p);
  };

  const apply = () => {
    const query = search.value.trim().toLowerCase();
    const criteria = selects.filter((s) => s.value).map((s) => [column(s.dataset.col), s.value]);
    const shown = new Set();
    for (const r of rows) {
      const ok = criteria.every(([i, v]) => (r.cells[i].dataset.v ?? r.cells[i].textContent).trim() === v)
        && (!query || r.dataset.search.includes(query))
        && (!completeOnly.checked || !r.classList.contains("incomplete"));
      r.hidden = !ok;
      if (ok) shown.add(r.dataset.id);
    }
    for (const body of bodies) body.previousElementSibling.hidden = !Array.from(body.rows).some((r) => !r.hidden);
    form.querySelector("#shown").textContent = `${shown.size} of ${rows.length} shown`;
    filterFigures(shown);
    state();
  };

  heads.forEach((th) => {
    th.querySelector("button").addEventListener("click", () => {
      const current = th.getAttribute("aria-sort");
      const dir = current === "none" ? th.dataset.first : current === "ascending" ? "descending" : "ascending";
      sortBy(th.dataset.key, dir);
      state();
    });
  });
  picks.forEach((c) => c.addEventListener("change", () => {
    if (picks.filter((x) => x.checked).length > 4) c.checked = false; // 2-4 entries
    state();
  }));

  const p = params(); // restore a shared view
  search.value = p.get("q") || "";
  selects.forEach((s) => { s.value = p.get(s.dataset.col) || ""; });
  completeOnly.checked = p.get("complete") === "1";
  const ids = new Set((p.get("ids") || "").split(",").filter(Boolean));
  picks.forEach((c) => { c.checked = ids.has(c.value); });
  const [key, dir] = (p.get("sort") || "").split(":");
  if (key) sortBy(key, dir === "desc" ? "descending" : "ascending");
  const active = p.get("q") || p.get("complete") || selects.some((s) => s.value);
  if (narrow() && !active) document.getElementById("filterbox").open = false; // the ranking first on a phone
  form.addEventListener("input", apply);
  form.addEventListener("submit", (ev) => ev.preventDefault());
  apply();
}

function setupCompare() {
  const node = document.getElementById("compare-data");
  if (!node) return;
  const data = JSON.parse(node.textContent);
  const colors = ["#4c78a8", "#f58518", "#54a24b", "#b2182b"];
  const add = document.getElementById("compare-add");
  let ids = (params().get("ids") || "").split(",").filter((id) => id in data.entries).slice(0, 4);
  const layout = (x, y, fmt, extra = {}) => ({
    font: { family: "system-ui, sans-serif", size: 13, color: "#1f2933" }, height: 380,
    margin: { l: 64, r: 16, t: 16, b: 56 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    xaxis: { title: { text: x }, automargin: true, gridcolor: "#e5e9f0" },
    yaxis: { title: { text: y }, automargin: true, tickformat: fmt, gridcolor: "#e5e9f0" },
    legend: { orientation: "h", x: 0, y: -0.2, yanchor: "top" }, ...extra });
  const curve = (id, key, i) => {
    const pts = data.entries[id].curves[key];
    return { type: "scatter", mode: "lines+markers", name: id, x: pts.map((p) => p[0]), y: pts.map((p) => p[1]),
      line: { color: colors[i] }, error_y: { type: "data", symmetric: false, array: pts.map((p) => p[3] - p[1]),
        arrayminus: pts.map((p) => p[1] - p[2]), thickness: 1, width: 3 } };
  };
  const profile = (id, metric, i) => ({ type: "scatter", mode: "lines+markers", name: id, y: data.corruptions,
    x: data.entries[id].corruptions[metric], line: { color: colors[i] } });
  const fmt = (v, pct) => (v === null || v === undefined ? "—" : pct ? `${(100 * v).toFixed(1)}%` : v.toFixed(3));

  const draw = () => {
    const p = params();
    ids.length ? p.set("ids", ids.join(",")) : p.delete("ids");
    setQuery(p);
    document.getElementById("compare-empty").hidden = ids.length > 0;
    document.getElementById("compare-figs").hidden = ids.length === 0;
    const chips = document.getElementById("compare-chips");
    chips.replaceChildren(...ids.map((id, i) => {
      const li = document.createElement("li");
      li.style.borderColor = colors[i];
      const a = Object.assign(document.createElement("a"), { href: `s/${id}.html`, textContent: id });
      const x = Object.assign(document.createElement("button"), { type: "button", textContent: "×" });
      x.setAttribute("aria-label", `remove ${id}`);
      x.addEventListener("click", () => { ids = ids.filter((y) => y !== id); draw(); });
      li.append(a, " ", x);
      return li;
    }));
    add.disabled = ids.length >= 4;
    if (!ids.length || !window.Plotly) return;
    const cfg = plotConfig();
    Plotly.react("cmp-overhead-linf", ids.map((id, i) => curve(id, "attack.worst_rate:overhead:linf", i)),
      layout("ε × 255 (L∞)", "worst-case rate overhead", "+.0%"), cfg);
    Plotly.react("cmp-accuracy-linf", ids.map((id, i) => curve(id, "attack.ce_pgd:accuracy:linf", i)),
      layout("ε × 255 (L∞)", "accuracy under CE-PGD", ".2f"), cfg);
    const rows = (x, fmt) => {
      const l = layout(x, "", "", { height: 560 });
      l.xaxis.tickformat = fmt;
      l.yaxis = { type: "category", autorange: "reversed", automargin: true, gridcolor: "#e5e9f0" };
      return l;
    };
    Plotly.react("cmp-corr-overhead", ids.map((id, i) => profile(id, "overhead", i)),
      rows("overhead, mean of 5 severities", "+.0%"), cfg);
    Plotly.react("cmp-corr-accuracy", ids.map((id, i) => profile(id, "accuracy", i)),
      rows("accuracy, mean of 5 severities", ".2f"), cfg);
    const table = document.getElementById("compare-table");
    const head = ["", ...ids];
    const lines = [];
    const worst = (id, k) => data.entries[id].curves[k];
    for (const [k, label, pct] of [["attack.worst_rate:overhead:linf", "worst rate overhead", true],
      ["attack.ce_pgd:accuracy:linf", "CE-PGD accuracy", false]]) {
      const eps = [...new Set(ids.flatMap((id) => worst(id, k).map((p) => p[0])))].sort((a, b) => a - b);
      for (const e of eps) {
        lines.push([`${label}, ε ${e}/255`, ...ids.map((id) => fmt((worst(id, k).find((p) => p[0] === e) || [])[1], pct))]);
      }
    }
    data.corruptions.forEach((c, j) => lines.push([`${c}: overhead`, ...ids.map((id) => fmt(data.entries[id].corruptions.overhead[j], true))]));
    const row = (cells, tag) => {
      const tr = document.createElement("tr");
      tr.append(...cells.map((c) => Object.assign(document.createElement(tag), { textContent: c })));
      return tr;
    };
    const thead = document.createElement("thead");
    const tbody = document.createElement("tbody");
    thead.append(row(head, "th"));
    tbody.append(...lines.map((l) => row(l, "td")));
    table.replaceChildren(thead, tbody);
  };
  add.addEventListener("change", () => {
    if (add.value && !ids.includes(add.value) && ids.length < 4) ids.push(add.value);
    add.value = "";
    draw();
  });
  draw();
}

document.addEventListener("DOMContentLoaded", () => {
  drawFigures();
  setupBoard();
  setupCompare();
});
