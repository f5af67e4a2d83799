// CacheGraph front end (anywidget ESM). The kernel draws the SVG (graphviz layout, one
// <g data-step data-status data-use-cache> per node); this file shows it, keeps the
// running pulse smooth across re-draws, and sends clicks back as messages:
//   {type: "toggle", step}   switch that step's cache for the next run
//   {type: "run"} / {type: "plan"}
//   {type: "show_run", run_id}       show a recorded run of the history strip
//   {type: "compare", runs: [a, b]}  compare two recorded runs

const PULSE_MS = 1200;

const FIELDS = [
  ["status", "status"],
  ["reason", "reason"],
  ["rows", "rows"],
  ["seconds", "seconds"],
  ["bytes", "bytes"],
  ["rows_reused", "rows reused"],
  ["rows_computed", "rows computed"],
  ["batches", "batches reused"],
  ["tokens_used", "tokens used"],
  ["tokens_saved", "tokens saved"],
  ["estimate", "plan: would send"],
  ["cost_used", "cost"],
  ["cost_saved", "cost saved"],
  ["signature", "signature"],
];

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = String(text);
  return node;
}

// A reason such as "llm.generation_kwargs.temperature changed 0.7 -> 0.2" in a narrow
// panel: it may wrap after a dotted path's dots, never inside a name nor inside "->".
function reasonText(node, text) {
  for (const part of String(text).split(/(->|(?<=[A-Za-z_]\.)(?=[A-Za-z_]))/)) {
    if (part === "->") node.append(el("span", { class: "dnb-nowrap" }, part));
    else if (part === "") node.append(document.createElement("wbr"));
    else if (part !== undefined) node.append(part);
  }
  return node;
}

function formatBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function formatField(key, d) {
  const value = d[key];
  switch (key) {
    case "rows": case "rows_reused": case "rows_computed":
      return value === undefined || value === null ? "" : Number(value).toLocaleString();
    case "seconds": return value ? `${Number(value).toFixed(2)} s` : "0 s";
    case "bytes": return formatBytes(value || 0);
    case "batches":
      return d.batches_reused && d.batches_total ? `${d.batches_reused}/${d.batches_total}` : "";
    case "tokens_used": case "tokens_saved":
      return value ? Number(value).toLocaleString() : "";
    case "cost_used": case "cost_saved":
      return value ? `$${Number(value).toPrecision(3)}` : "";
    default: return value === undefined || value === null ? "" : String(value);
  }
}

const STRIP_STATUSES = ["hit", "partial", "miss", "failed"];

function formatCount(n) {
  n = Number(n || 0);
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return n.toLocaleString();
}

function chip(run, shown, compared, picking) {
  const total = Object.values(run.statuses || {}).reduce((a, b) => a + b, 0) || 1;
  const button = el("button", {
    class: "dnb-chip", type: "button", "data-run-id": run.run_id,
    "data-number": String(run.number), "data-own": String(!!run.own),
    "data-shown": String(run.run_id === shown),
    "data-compared": String(compared.includes(run.run_id)),
    "data-picked": String(picking.includes(run.run_id)),
    "data-error": String(!!run.error),
    title: `${run.run_id}\n${run.date} ${run.time}` +
      Object.entries(run.statuses || {}).map(([s, n]) => `\n${n} ${s}`).join("") +
      (run.error ? `\nerror: ${run.error}` : ""),
  });
  const head = el("span", { class: "dnb-chip-head" });
  head.append(el("span", { class: "dnb-chip-number" }, `#${run.number}`),
    el("span", { class: "dnb-chip-time" }, run.time));
  if (run.own) head.append(el("span", { class: "dnb-chip-own" }, "this cell"));
  const bar = el("span", { class: "dnb-chip-bar" });
  for (const status of STRIP_STATUSES) {
    const n = (run.statuses || {})[status];
    if (!n) continue;
    const part = el("span", { class: `dnb-seg dnb-seg-${status}` });
    part.style.flexGrow = String(n / total);
    bar.append(part);
  }
  const facts = [`${Number(run.seconds).toFixed(run.seconds < 10 ? 2 : 1)} s`,
    `${formatCount(run.rows)} rows`];
  if (run.tokens_saved) facts.push(`${formatCount(run.tokens_saved)} tok saved`);
  if (run.money_saved) facts.push(`$${Number(run.money_saved).toFixed(2)} saved`);
  button.append(head, bar, el("span", { class: "dnb-chip-facts" }, facts.join(" \u00b7 ")));
  return button;
}

function render({ model, el: root }) {
  root.classList.add("dnb-root");
  const toolbar = el("div", { class: "dnb-toolbar" });
  const title = el("span", { class: "dnb-title" });
  const runButton = el("button", { class: "dnb-button dnb-run", type: "button",
    title: "Run the pipeline again (with the cache switches below)" }, "\u25B6 Run");
  const planButton = el("button", { class: "dnb-button dnb-plan", type: "button",
    title: "Show what a run would do, without running" }, "Plan");
  const message = el("span", { class: "dnb-message" });
  toolbar.append(title, runButton, planButton, message);
  const history = el("div", { class: "dnb-history" });
  const historyLabel = el("span", { class: "dnb-history-label" }, "Runs");
  const strip = el("div", { class: "dnb-strip" });
  const compareButton = el("button", { class: "dnb-button dnb-compare", type: "button",
    title: "Pick two runs to see, step by step, what changed between them" }, "\u21C4 Compare");
  history.append(historyLabel, strip, compareButton);
  let picking = null;   // run ids picked for a comparison, null when not picking
  const body = el("div", { class: "dnb-body" });
  const graph = el("div", { class: "dnb-graph" });
  const panel = el("div", { class: "dnb-panel" });
  body.append(graph, panel);
  const hint = el("div", { class: "dnb-hint" },
    "Click a node to switch its cache off (or on) for the next run and see its details.");
  root.append(toolbar, history, body, hint);

  function selectedNode() {
    const step = model.get("selected");
    if (!step) return null;
    for (const g of graph.querySelectorAll("g[data-step]")) {
      if (g.getAttribute("data-step") === step) return g;
    }
    return null;
  }

  function decorate() {
    // Keep the pulse in phase across re-draws: offset the animation by the clock.
    const phase = -(performance.now() % PULSE_MS);
    for (const shape of graph.querySelectorAll('g[data-status="running"] .dnb-shape')) {
      shape.style.animationDelay = `${phase}ms`;
    }
    for (const g of graph.querySelectorAll("g.dnb-selected")) g.classList.remove("dnb-selected");
    const node = selectedNode();
    if (node) node.classList.add("dnb-selected");
  }

  function drawGraph() {
    graph.innerHTML = model.get("svg") || "";
    const svg = graph.querySelector("svg");
    if (svg) {
      // Scale down to the cell's width, never up.
      const width = svg.getAttribute("width");
      svg.style.maxWidth = "100%";
      svg.style.height = "auto";
      if (width) svg.style.width = width;
    }
    decorate();
  }

  function drawHeader() {
    const mode = model.get("mode");
    root.setAttribute("data-mode", mode);
    root.setAttribute("data-runs", String(model.get("runs")));
    title.textContent = model.get("pipeline_name");
    message.textContent = model.get("message") || "";
    hint.textContent = mode === "compare"
      ? "Comparing two runs: click a node to read what changed; Compare (close) goes back."
      : "Click a node to switch its cache off (or on) for the next run and see its details.";
    const busy = mode === "running";
    runButton.disabled = busy || !model.get("can_run");
    planButton.disabled = busy;
  }

  function drawHistory() {
    const runs = model.get("history") || [];
    history.style.display = runs.length ? "" : "none";
    const shown = model.get("shown_run");
    const compared = model.get("compared") || [];
    const keepScroll = strip.scrollLeft;
    const atEnd = strip.scrollLeft + strip.clientWidth >= strip.scrollWidth - 4;
    strip.replaceChildren(...runs.map((run) => chip(run, shown, compared, picking || [])));
    strip.scrollLeft = atEnd ? strip.scrollWidth : keepScroll;
    root.setAttribute("data-picking", String(picking !== null));
    compareButton.textContent = picking !== null ? "Pick two runs\u2026 (cancel)" :
      (compared.length ? "\u21C4 Compare (close)" : "\u21C4 Compare");
    compareButton.disabled = runs.length < 2 && !compared.length;
  }

  function drawPanel() {
    panel.replaceChildren();
    const step = model.get("selected");
    const d = (model.get("details") || {})[step];
    if (!step || !d) {
      panel.classList.add("dnb-empty");
      panel.append(el("div", { class: "dnb-panel-hint" }, "Select a node to see why it was reused or recomputed."));
      return;
    }
    panel.classList.remove("dnb-empty");
    const head = el("div", { class: "dnb-panel-head" });
    const pill = d.compare ? { same: "unchanged", changed: "changed", added: "new" }[d.status]
      || d.status : d.planned ? `plan: ${d.status}` : d.status;
    head.append(el("span", { class: "dnb-panel-name" }, step),
      el("span", { class: `dnb-pill dnb-pill-${d.status}` }, pill));
    panel.append(head);
    if (d.compare) {
      panel.append(reasonText(el("div", { class: "dnb-change" }), d.reason || ""));
      return;
    }
    const table = el("table", { class: "dnb-stats" });
    for (const [key, label] of FIELDS) {
      if (key === "status") continue;
      const text = formatField(key, d);
      if (text === "") continue;
      const row = el("tr");
      const cell = el("td", { class: `dnb-f-${key}` });
      if (key === "reason") reasonText(cell, text); else cell.textContent = text;
      row.append(el("th", {}, label), cell);
      table.append(row);
    }
    panel.append(table);
    const toggle = el("button", { class: "dnb-button dnb-toggle", type: "button" },
      d.use_cache ? "Cache on \u2014 switch off for next run" : "Cache off \u2014 switch back on");
    toggle.addEventListener("click", () => model.send({ type: "toggle", step }));
    panel.append(toggle);
    if (d.rerun) panel.append(el("div", { class: "dnb-note" }, "Re-runs next time: an upstream step's cache is off."));
    if (d.error) panel.append(el("pre", { class: "dnb-error" }, d.error));
    const preview = d.preview;
    if (preview && preview.columns && preview.columns.length) {
      panel.append(el("div", { class: "dnb-preview-title" },
        `First rows (${Math.min(preview.rows.length, preview.total)} of ${Number(preview.total).toLocaleString()})`));
      const wrap = el("div", { class: "dnb-preview-wrap" });
      const rows = el("table", { class: "dnb-preview" });
      const header = el("tr");
      for (const c of preview.columns) header.append(el("th", {}, c));
      rows.append(header);
      for (const r of preview.rows) {
        const tr = el("tr");
        for (const v of r) tr.append(el("td", {}, v === null ? "null" : typeof v === "object" ? JSON.stringify(v) : v));
        rows.append(tr);
      }
      wrap.append(rows);
      panel.append(wrap);
    }
  }

  graph.addEventListener("click", (event) => {
    const node = event.target.closest ? event.target.closest("g[data-step]") : null;
    if (!node) return;
    const step = node.getAttribute("data-step");
    model.set("selected", step);
    model.save_changes();
    // Comparing two runs: a click only shows what changed (the cache stays as it is).
    if (model.get("mode") !== "compare") model.send({ type: "toggle", step });
  });
  strip.addEventListener("click", (event) => {
    const target = event.target.closest ? event.target.closest(".dnb-chip") : null;
    if (!target) return;
    const runId = target.getAttribute("data-run-id");
    if (picking !== null || event.shiftKey) {
      picking = picking || [model.get("shown_run")].filter(Boolean);
      if (!picking.includes(runId)) picking.push(runId);
      if (picking.length === 2) {
        model.send({ type: "compare", runs: picking });
        picking = null;
      }
      drawHistory();
      return;
    }
    model.send({ type: "show_run", run_id: runId });
  });
  compareButton.addEventListener("click", () => {
    if (picking !== null) picking = null;
    else if ((model.get("compared") || []).length) {
      const own = model.get("own_run");
      const runs = model.get("history") || [];
      const back = own || (runs.length ? runs[runs.length - 1].run_id : "");
      if (back) model.send({ type: "show_run", run_id: back });
    } else picking = [];
    drawHistory();
  });
  // Runs of other cells and processes join the strip: re-read it when the graph is looked at.
  let lastAsked = 0;
  const askHistory = () => {
    const now = Date.now();
    if (now - lastAsked < 2000 || model.get("mode") === "running") return;
    lastAsked = now;
    model.send({ type: "history" });
  };
  root.addEventListener("pointerenter", askHistory);
  runButton.addEventListener("click", () => model.send({ type: "run" }));
  planButton.addEventListener("click", () => model.send({ type: "plan" }));

  const onSvg = () => drawGraph();
  const onHeader = () => drawHeader();
  const onPanel = () => { drawPanel(); decorate(); };
  const listeners = [
    ["change:svg", onSvg],
    ["change:mode", onHeader], ["change:message", onHeader],
    ["change:can_run", onHeader], ["change:runs", onHeader],
    ["change:details", onPanel], ["change:selected", onPanel],
    ["change:history", drawHistory], ["change:shown_run", drawHistory],
    ["change:compared", drawHistory],
  ];
  for (const [event, handler] of listeners) model.on(event, handler);
  drawGraph();
  drawHeader();
  drawHistory();
  drawPanel();
  askHistory();
  return () => {
    root.removeEventListener("pointerenter", askHistory);
    for (const [event, handler] of listeners) model.off(event, handler);
  };
}

export default { render };
