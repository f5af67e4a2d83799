// CacheGraph front end (anywidget ESM). The kernel draws the SVG (graphviz layout, one
// <g data-step data-status data-use-cache> per node); this file shows it, keeps the
// running pulse smooth across re-draws, and sends clicks back as messages:
//   {type: "toggle", step}   switch that step's cache for the next run
//   {type: "run"} / {type: "plan"}

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
  const body = el("div", { class: "dnb-body" });
  const graph = el("div", { class: "dnb-graph" });
  const panel = el("div", { class: "dnb-panel" });
  body.append(graph, panel);
  const hint = el("div", { class: "dnb-hint" },
    "Click a node to switch its cache off (or on) for the next run and see its details.");
  root.append(toolbar, body, hint);

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
    const busy = mode === "running";
    runButton.disabled = busy || !model.get("can_run");
    planButton.disabled = busy;
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
    head.append(el("span", { class: "dnb-panel-name" }, step),
      el("span", { class: `dnb-pill dnb-pill-${d.status}` }, d.planned ? `plan: ${d.status}` : d.status));
    panel.append(head);
    const table = el("table", { class: "dnb-stats" });
    for (const [key, label] of FIELDS) {
      if (key === "status") continue;
      const text = formatField(key, d);
      if (text === "") continue;
      const row = el("tr");
      row.append(el("th", {}, label), el("td", { class: `dnb-f-${key}` }, text));
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
    model.send({ type: "toggle", step });
  });
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
  ];
  for (const [event, handler] of listeners) model.on(event, handler);
  drawGraph();
  drawHeader();
  drawPanel();
  return () => {
    for (const [event, handler] of listeners) model.off(event, handler);
  };
}

export default { render };
