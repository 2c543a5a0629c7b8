// vsmmon dashboard: loads the current state through the API, then follows /api/v1/events (SSE).
// Plain JavaScript, no build step; uPlot (vendor/) draws the charts; views.js has the tasks and queues views.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SYSTEMS = { S1: "operations", S2: "coordination", S3: "control", S4: "intelligence", S5: "policy" };
const CHARTS = [
  ["cpu", "CPU"], ["memory", "Memory"], ["throughput", "Throughput"], ["latency", "Latency (p95)"], ["queue", "Queue depth"],
];
const ARC = Math.PI * 80;
const SIGNALS_SHOWN = 6;
const ROWS_SHOWN = 300; // the table draws this many rows of the sorted, filtered agents; the tiles show all
const RECONNECT_MS = 2000; // the server's SSE retry hint
const state = {
  agents: [], sort: { key: "score", dir: 1 }, window: 300, agent: null, plots: {},
  alertsMissing: false, refreshTimer: null, reconnectTimer: null, opened: false, readsNeedToken: false,
};

// ---------- helpers ----------
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const bytes = (v) => {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
};
const ago = (iso) => {
  if (!iso) return "–";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
};
const stateOfScore = (v) => (v === null || v === undefined ? "unknown" : v > 0.8 ? "healthy" : v > 0.5 ? "degraded" : "unhealthy");

function token() { return $("#token").value.trim(); }
function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...headers(Boolean(options.body)), ...(options.headers || {}) } });
  } catch (e) {
    return { ok: false, status: 0, body: null }; // the server is away: the event stream reconnects and refreshes
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { ok: response.ok, status: response.status, body };
}
function firstList(body) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") for (const v of Object.values(body)) if (Array.isArray(v)) return v;
  return [];
}

// ---------- viability and S1-S5 ----------
function renderHealth(h) {
  const shown = $("#viability").dataset.at;
  if (shown && Date.parse(shown) > Date.parse(h.at)) return; // a late answer must not replace a newer assessment
  const v = h.viability;
  const arc = $("#gauge-arc");
  arc.style.strokeDasharray = `${ARC}`;
  arc.style.strokeDashoffset = `${ARC * (1 - Math.max(0, Math.min(1, v ?? 0)))}`;
  const colour = { normal: "var(--ok)", warning: "var(--warn)", critical: "var(--bad)" }[h.viability_state] || "var(--unknown)";
  arc.style.stroke = colour;
  $("#viability-value").textContent = num(v);
  const vs = $("#viability-state");
  vs.textContent = h.viability_state || "unknown";
  vs.dataset.s = h.viability_state || "unknown";
  $("#overall").textContent = num(h.overall_health);
  const pain = (h.algedonic || []).map((s) => `<li title="algedonic signal: straight to S5">⚠ ${esc(s)}</li>`);
  const necks = (h.bottlenecks || []).map((s) => `<li class="bottleneck" title="bottleneck">▲ ${esc(s)}</li>`);
  const listed = [...pain, ...necks];
  $("#signals").innerHTML = listed.slice(0, SIGNALS_SHOWN).join("") +
    (listed.length > SIGNALS_SHOWN ? `<li class="muted">and ${listed.length - SIGNALS_SHOWN} more</li>` : "");
  $("#systems").innerHTML = Object.keys(SYSTEMS).map((name) => systemCard(name, (h.systems || {})[name])).join("");
  // widths through the CSSOM: the Content-Security-Policy refuses style attributes in markup
  document.querySelectorAll("#systems .bar > i").forEach((i) => { i.style.width = `${i.dataset.pct}%`; });
  $("#assessed").textContent = `assessed ${new Date(h.at).toLocaleTimeString()}`;
  $("#assessed").title = h.at;
  $("#viability").dataset.at = h.at; // set last: the page shows this assessment
}

function systemCard(name, s) {
  if (!s) return `<div class="card system"><h3>${name}<span class="muted">no data</span></h3></div>`;
  const pct = Math.round(100 * (s.score ?? 0));
  const factors = (s.factors || []).map((f) => {
    const inputs = Object.entries(f.inputs || {})
      .map(([k, v]) => `${esc(k)}=${typeof v === "number" ? esc(+v.toFixed(3)) : esc(JSON.stringify(v))}`).join(", ");
    return `<div class="factor"><b>${esc(f.name)}</b> <span data-s="${stateOfScore(f.score)}">${num(f.score)}</span>` +
      (inputs ? `<div class="inputs">${inputs}</div>` : "") + "</div>";
  }).join("");
  return `<div class="card system" data-system="${name}">
    <h3>${name} <span class="muted">${SYSTEMS[name]}</span><span class="score" data-s="${esc(s.state)}">${num(s.score)}</span></h3>
    <div class="bar"><i data-pct="${pct}" data-s="${esc(s.state)}"></i></div>
    <div class="muted">${esc(s.state)}</div>${factors}</div>`;
}

async function loadHealth() {
  const r = await api("/api/v1/health");
  if (r.ok) renderHealth(r.body);
}

// ---------- agents ----------
function agentRow(a) {
  return {
    ...a,
    cpu: a.metrics.cpu_percent ?? null,
    rss: a.metrics.rss_bytes ?? null,
    load: a.metrics.concurrency ? (a.metrics.active ?? 0) / a.metrics.concurrency : null,
  };
}

async function loadAgents() {
  const r = await api("/api/v1/dashboard/agents");
  if (!r.ok) return;
  const signature = JSON.stringify([r.body.at, r.body.agents.map((a) => [a.id, a.status, a.score, a.last_seen])]);
  if (signature === state.agentsSignature) return; // nothing new: leave 1,000 rows and tiles as they are
  state.agentsSignature = signature;
  state.agents = r.body.agents.map(agentRow);
  const kinds = [...new Set(state.agents.map((a) => a.kind))].sort();
  const select = $("#agent-kind");
  const chosen = select.value;
  select.innerHTML = `<option value="">every kind</option>` + kinds.map((k) => `<option>${esc(k)}</option>`).join("");
  select.value = kinds.includes(chosen) ? chosen : "";
  renderAgents();
  fillChartAgents();
}

function filteredAgents() {
  const text = $("#agent-filter").value.trim().toLowerCase();
  const status = $("#agent-status").value;
  const kind = $("#agent-kind").value;
  const { key, dir } = state.sort;
  return state.agents
    .filter((a) => (!status || a.status === status) && (!kind || a.kind === kind) &&
      (!text || `${a.id} ${a.host} ${a.kind}`.toLowerCase().includes(text)))
    .sort((x, y) => {
      const a = x[key], b = y[key];
      if (a === b) return x.id < y.id ? -1 : 1;
      if (a === null || a === undefined) return 1;
      if (b === null || b === undefined) return -1;
      return (a < b ? -1 : 1) * dir;
    });
}

function renderAgents() {
  const shown = filteredAgents();
  const offline = state.agents.filter((a) => a.status === "offline").length;
  $("#agent-counts").textContent = `${state.agents.length} shown, ${offline} offline`;
  $("#tiles").innerHTML = shown.map((a) =>
    `<i class="${a.status === "offline" || a.status === "stopped" ? a.status : a.state || ""}" title="${esc(a.id)}: ${esc(a.status)}, h=${num(a.score)}"></i>`).join("");
  const rows = shown.slice(0, ROWS_SHOWN).map((a) => `<tr data-id="${esc(a.id)}"${a.id === state.agent ? ' class="selected"' : ""}>
    <td>${esc(a.id)}</td><td>${esc(a.kind)}</td><td data-s="${esc(a.status)}">${esc(a.status)}</td>
    <td data-s="${esc(a.state || "unknown")}">${num(a.score)}</td><td>${num(a.cpu, 1)}</td><td>${bytes(a.rss)}</td>
    <td>${a.metrics.concurrency ? `${num(a.metrics.active ?? 0, 0)} / ${num(a.metrics.concurrency, 0)}` : "–"}</td>
    <td title="${esc(a.last_seen)}">${ago(a.last_seen)}</td></tr>`);
  $("#agents tbody").innerHTML = rows.join("");
  $("#agents-more").textContent = shown.length > ROWS_SHOWN
    ? `${shown.length - ROWS_SHOWN} more match: narrow the filter to see them` : "";
  document.querySelectorAll("#agents th").forEach((th) => {
    th.className = th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "asc" : "desc") : "";
  });
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

// ---------- charts ----------
function fillChartAgents() {
  const select = $("#chart-agent");
  const charted = state.agents.filter((a) => !["queue", "broker"].includes(a.kind));
  const candidates = charted.map((a) => a.id).sort();
  if (!state.agent || !candidates.includes(state.agent)) state.agent = chartDefault(charted);
  const current = [...select.options].map((o) => o.value).join("\n");
  if (current !== candidates.join("\n")) {
    select.innerHTML = candidates.map((id) => `<option>${esc(id)}</option>`).join("");
  }
  select.value = state.agent || "";
  if (!Object.keys(state.plots).length) loadCharts();
}

// the agent charted first: one with memory and task figures (a worker), live, before a host or a data-less sensor
function chartDefault(agents) {
  const rank = (a) => (a.status === "online" ? 0 : 4) + (a.rss === null ? 2 : 0)
    + (a.metrics.tasks_succeeded_total === undefined && a.metrics.active === undefined ? 1 : 0);
  const best = [...agents].sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1))[0];
  return best ? best.id : null;
}

// tick labels with their unit, each once: a range of a few bytes or a flat series would repeat "0 B" / "1 B"
// (the canvas holds them; the chart's box keeps a copy in data-yticks, for a reader of the page)
function tickLabels(format, box) {
  return (u, ticks) => {
    const seen = new Set();
    const labels = ticks.map((t) => { const label = format(t); return seen.has(label) ? "" : (seen.add(label), label); });
    box.dataset.yticks = labels.filter(Boolean).join("|");
    return labels;
  };
}

function seriesData(lines, forecast, interval) {
  // uPlot wants one shared x axis: merge every line's timestamps
  const xs = new Set();
  lines.forEach((l) => l.points.forEach((p) => xs.add(p[0])));
  (forecast?.points || []).forEach((p) => xs.add(p[0]));
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const column = (points, at) => {
    const ys = new Array(x.length).fill(null);
    points.forEach((p) => { if (p[at] !== null && p[at] !== undefined) ys[index.get(p[0])] = p[at]; });
    return ys;
  };
  const data = [x, ...lines.map((l) => column(l.points, 1))];
  if (forecast) data.push(column(forecast.points, 1));
  if (interval) data.push(column(forecast.points, 2), column(forecast.points, 3));
  return data;
}

// room for the y axis' longest tick label (with its unit), so that none is cut at the left edge
const labelRoom = (u, values) => 18 + 7 * Math.max(4, ...(values || []).map((v) => String(v ?? "").length));

const PALETTE = ["#4c9be8", "#3fb96f", "#e0a526", "#c678dd", "#56b6c2", "#e5534b", "#d19a66", "#98c379"];

function drawChart(id, title, body) {
  const box = document.getElementById(`chart-${id}`);
  const note = box.querySelector(".note");
  const lines = body.lines || [];
  let fc = body.forecast;
  const last = lines.length ? lines[0].points[lines[0].points.length - 1] : null;
  if (fc && last && last[0] < fc.points[0][0]) {
    // the forecast line starts where the data ends
    fc = { ...fc, points: [[last[0], last[1], last[1], last[1]], ...fc.points] };
  }
  const made = fc ? new Date(fc.made_at).toLocaleTimeString() : "";
  const described = fc?.kind === "forecast" ? `forecast of ${fc.metric} made ${made}, with its interval`
    : `Holt projection of ${fc?.metric} from ${made}`;
  note.textContent = lines.length ? (fc ? `dashed: ${described}` : "") : "no data in this window";
  if (!lines.some((l) => l.points.length)) { // nothing to draw: no empty axes whose ticks mean nothing
    if (state.plots[id]) { state.plots[id].plot.destroy(); delete state.plots[id]; }
    box.querySelector(".plot").innerHTML = "";
    note.textContent = "no data in this window";
    return;
  }
  const fmt = body.unit === "bytes" ? (u, v) => bytes(v) : (u, v) => (v === null ? "–" : `${+v.toPrecision(4)} ${body.unit}`);
  const series = [{}].concat(lines.map((l, i) => ({ label: l.name, stroke: PALETTE[i % PALETTE.length], width: 1.5, value: fmt, spanGaps: false })));
  const interval = Boolean(body.forecast) && body.forecast.points.some((p) => p[2] !== null);
  if (fc) series.push({ label: "forecast", stroke: "#e0a526", dash: [6, 4], width: 1.5, value: fmt, spanGaps: true });
  if (interval) {
    series.push({ label: "lower", stroke: "rgba(224,165,38,.45)", dash: [2, 4], value: fmt, spanGaps: true });
    series.push({ label: "upper", stroke: "rgba(224,165,38,.45)", dash: [2, 4], value: fmt, spanGaps: true });
  }
  const data = seriesData(lines, fc, interval);
  const old = state.plots[id];
  const shape = series.map((s) => s.label).join("|");
  if (old && old.shape === shape) { old.plot.setData(data); return; }
  if (old) old.plot.destroy();
  const width = Math.max(300, box.clientWidth - 4);
  const opts = {
    width, height: 170, series,
    scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } }, // every charted figure is >= 0
    axes: [
      { stroke: "#8a96a3", grid: { stroke: "#222c36" } },
      body.unit === "bytes"
        ? { stroke: "#8a96a3", grid: { stroke: "#222c36" }, size: labelRoom, values: tickLabels(bytes, box) }
        : { stroke: "#8a96a3", grid: { stroke: "#222c36" }, size: labelRoom,
            values: tickLabels((v) => `${+v.toPrecision(3)} ${body.unit}`, box) },
    ],
    legend: { live: true },
  };
  const target = box.querySelector(".plot");
  target.innerHTML = "";
  state.plots[id] = { plot: new uPlot(opts, data, target), shape };
}

async function loadCharts() {
  const holder = $("#charts");
  if (!holder.children.length) {
    holder.innerHTML = CHARTS.map(([id, title]) =>
      `<div class="chart" id="chart-${id}"><h4>${title}</h4><div class="plot"></div><div class="note"></div></div>`).join("");
  }
  await Promise.all(CHARTS.map(async ([id, title]) => {
    if (id !== "queue" && !state.agent) return;
    const q = new URLSearchParams({ chart: id, window_s: state.window });
    if (id !== "queue") q.set("agent", state.agent);
    const r = await api(`/api/v1/dashboard/series?${q}`);
    if (r.ok) drawChart(id, title, r.body);
  }));
}

// ---------- alerts, silences, S3 actions, S5 decisions, recommendations ----------
async function loadAlerts() {
  const r = await api(`/api/v1/alerts?status=${encodeURIComponent($("#alert-filter").value)}`);
  const box = $("#alerts");
  if (r.status === 404 || r.status === 405) {
    state.alertsMissing = true;
    box.innerHTML = `<div class="muted">this server has no alert API</div>`;
    return;
  }
  if (!r.ok) { box.innerHTML = `<div class="muted">alerts unavailable (${r.status})</div>`; return; }
  const alerts = r.body.alerts || [];
  box.innerHTML = alerts.length ? alerts.map(alertItem).join("") : `<div class="muted">no alerts</div>`;
}

function alertItem(a) {
  const open = a.status !== "resolved";
  const ack = open && a.status !== "acknowledged"
    ? `<button data-ack="${esc(a.id)}">ack</button>` : "";
  const silence = open ? `<button data-silence="${esc(a.target)}" title="silence this target">silence</button>` : "";
  const resolve = open ? `<button data-resolve="${esc(a.id)}">resolve</button>` : "";
  const by = a.acknowledged_by ? `, acknowledged by ${esc(a.acknowledged_by)}` : "";
  return `<div class="item alert" data-id="${esc(a.id)}" data-status="${esc(a.status)}">${resolve}${silence}${ack}
    <span data-s="${esc(a.severity)}">${esc(a.severity)}</span> <b>${esc(a.type)}</b> on ${esc(a.target)}
    <div>${esc(a.summary)}</div>
    <div class="meta">${esc(a.status)}${a.escalation_level ? `, escalation ${esc(a.escalation_level)}` : ""}${by}, started ${ago(a.started_at)}</div></div>`;
}

async function alertAction(id, verb) {
  const by = prompt(`${verb === "ack" ? "Acknowledged" : "Resolved"} by`, localStorage.getItem("vsmmon.ackBy") || "") || "";
  if (!by) return;
  localStorage.setItem("vsmmon.ackBy", by);
  const r = await api(`/api/v1/alerts/${encodeURIComponent(id)}/${verb}`, { method: "POST", body: JSON.stringify({ by }) });
  if (!r.ok) alert(`${verb} failed (${r.status}): ${JSON.stringify(r.body?.detail ?? r.body)}`);
  loadAlerts();
}

async function loadSilences() {
  const r = await api("/api/v1/silences");
  const box = $("#silences");
  if (!r.ok) { box.innerHTML = `<div class="muted">silences unavailable (${r.status})</div>`; return; }
  const list = firstList(r.body);
  box.innerHTML = list.length ? list.map((s) => `<div class="item" data-id="${esc(s.id)}">
    <button data-unsilence="${esc(s.id)}">remove</button>${esc(Object.entries(s.matchers || {}).map(([k, v]) => `${k}=${v}`).join(", "))}
    <div class="meta">until ${esc(new Date(s.expires_at).toLocaleString())} by ${esc(s.created_by)} ${esc(s.comment)}</div></div>`).join("")
    : `<div class="muted">no silences</div>`;
}

async function silence(matcher, minutes, comment) {
  const [key, ...rest] = matcher.split("=");
  const value = rest.join("=");
  const by = localStorage.getItem("vsmmon.ackBy") || "dashboard";
  const body = { matchers: { [key.trim()]: value.trim() }, duration_s: minutes * 60, comment, created_by: by };
  const r = await api("/api/v1/silences", { method: "POST", body: JSON.stringify(body) });
  if (!r.ok) alert(`silence failed (${r.status}): ${JSON.stringify(r.body?.detail ?? r.body)}`);
  loadSilences();
  loadAlerts();
}

function simpleList(sel, items, line) {
  $(sel).innerHTML = items.length ? items.map(line).join("") : `<div class="muted">none</div>`;
}

// links from S3's and S5's records to what they are about: the alert in the list, the agent in the charts
const agentLink = (id) => (id ? `<a href="#charts" data-chart-agent="${esc(id)}">${esc(id)}</a>` : "");
const alertLink = (id, text) => (id ? `<a href="#alerts-card" data-alert-link="${esc(id)}">${esc(text)}</a>` : esc(text));
const hostList = (byQueue) => Object.entries(byQueue || {}).map(([q, hosts]) => `${q} on ${[].concat(hosts).join(", ")}`).join("; ");

function actionSentence(a) {
  const p = a.params || {};
  const before = a.before?.concurrency, after = a.after?.concurrency;
  const sizes = before !== undefined && after !== undefined ? ` (pool ${before} → ${after})` : "";
  const what = {
    pool_grow: `Grew the pool of ${agentLink(a.target)} by ${esc(p.n ?? 1)}${sizes}`,
    pool_shrink: `Shrank the pool of ${agentLink(a.target)} by ${esc(p.n ?? 1)}${sizes}`,
    autoscale: `Set autoscaling of ${agentLink(a.target)} to ${esc(p.min ?? "?")}–${esc(p.max ?? "?")}`,
    none: `Took no action on ${agentLink(a.target)}`,
  }[a.action] || `${esc(a.action)} on ${agentLink(a.target)}`;
  const verdict = a.effective === true ? "it helped" : a.effective === false ? "it did not help" : a.action === "none" || a.dry_run ? "" : "not verified yet";
  return `${what}${a.dry_run ? " (dry run: nothing sent)" : ""}, for ${alertLink(a.alert_id, "its alert")}: ${esc(a.reason)}${verdict ? `; ${verdict}` : ""}.`;
}

function decisionSentence(d) {
  const x = d.detail || {};
  const al = x.alert || {};
  const about = al.type ? `${esc(al.severity)} ${esc(al.type)} on ${agentLink(al.target)}` : "an alert";
  const cause = alertLink(d.alert_id, "the alert");
  const said = {
    notify: `Notified the operators of ${about}`,
    protective_mode: `Entered protective mode for ${about}: stopped consuming ${esc(hostList(x.cancelled)) || "no queue"}`,
    hold: `Held S3's actions until ${x.hold_until ? esc(new Date(x.hold_until).toLocaleTimeString()) : "lifted"}, for ${about}`,
  }[d.decision] || `${esc(d.decision)} for ${about}`;
  const lifted = (x.lifts || []).map((l) => (l === "protective_mode"
    ? `left protective mode${x.restored ? ` (consuming ${esc(hostList(x.restored))} again)` : ""}` : `lifted the ${esc(l)}`));
  return `${said}${lifted.length ? `, and ${lifted.join(", ")}` : ""} (${cause}${x.reason ? `: ${esc(x.reason)}` : ""}).`;
}

async function loadActions() {
  const r = await api("/api/v1/control-actions");
  if (!r.ok) { $("#actions").innerHTML = `<div class="muted">unavailable (${r.status})</div>`; return; }
  simpleList("#actions", firstList(r.body), (a) => `<div class="item" data-action="${esc(a.action)}">${actionSentence(a)}
    <div class="meta">${ago(a.at)}</div></div>`);
}

async function loadDecisions() {
  const r = await api("/api/v1/policy-decisions");
  if (!r.ok) { $("#decisions").innerHTML = `<div class="muted">unavailable (${r.status})</div>`; return; }
  simpleList("#decisions", firstList(r.body), (d) => `<div class="item" data-decision="${esc(d.decision)}">${decisionSentence(d)}
    <div class="meta">${ago(d.at)}</div></div>`);
}

async function showAlert(id) {
  if (!document.querySelector(`#alerts .alert[data-id="${CSS.escape(id)}"]`)) {
    $("#alert-filter").value = "all"; // a resolved alert is not among the active ones
    await loadAlerts();
  }
  const item = document.querySelector(`#alerts .alert[data-id="${CSS.escape(id)}"]`);
  if (item) { item.scrollIntoView({ block: "center" }); item.classList.add("picked"); setTimeout(() => item.classList.remove("picked"), 2000); }
}

function chartAgent(id) {
  if (!state.agents.some((a) => a.id === id && !["queue", "broker"].includes(a.kind))) {
    $("#agent-filter").value = id; // not charted (a queue, or gone from the registry): find it in the grid
    renderAgents();
    return;
  }
  state.agent = id;
  $("#chart-agent").value = id;
  renderAgents();
  loadCharts();
}

async function loadRecommendations() {
  const r = await api("/api/v1/recommendations");
  if (!r.ok) return;
  simpleList("#recommendations", r.body.recommendations, (x) => `<div class="item"><b>${esc(x.kind)}</b> ${esc(x.target)}
    <span class="muted">(${num(x.confidence)})</span><div>${esc(x.rationale)}</div>
    <div class="meta">${esc(JSON.stringify(x.action))}</div></div>`);
}

// ---------- live updates ----------
// EventSource cannot send headers, and the token must never go into a URL (access logs, history). When
// reads need the token, each connection first takes a ticket (POST /api/v1/stream-ticket, the token in
// the Authorization header): it opens one event stream within 60 s, and nothing else.
async function streamUrl() {
  if (!state.readsNeedToken) return "/api/v1/events";
  if (!token()) return null;
  const r = await api("/api/v1/stream-ticket", { method: "POST" });
  return r.ok && r.body?.ticket ? `/api/v1/events?ticket=${encodeURIComponent(r.body.ticket)}` : null;
}

function reconnectSoon() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, RECONNECT_MS);
}

async function connect() {
  const live = $("#live");
  const url = await streamUrl();
  if (!url) {
    live.dataset.state = "reconnecting";
    live.textContent = token() ? "reconnecting…" : "needs the API token";
    reconnectSoon();
    return;
  }
  const source = new EventSource(url);
  source.onopen = () => {
    live.dataset.state = "live";
    live.textContent = "live";
    document.body.dataset.live = "1";
    if (state.opened) refreshAll(); // whatever happened while we were away
    state.opened = true;
  };
  source.onerror = () => {
    live.dataset.state = "reconnecting";
    live.textContent = "reconnecting…";
    document.body.dataset.live = "";
    // EventSource retries a lost connection by itself, but with the same URL (a used ticket) and never
    // after an HTTP error (a 401, a 429, a 503): then a new EventSource, with a new ticket
    if (state.readsNeedToken || source.readyState === EventSource.CLOSED) {
      source.close();
      reconnectSoon();
    }
  };
  source.addEventListener("health", (e) => {
    renderHealth(JSON.parse(e.data));
    scheduleRefresh(); // agents' scores and the charts follow each assessment
  });
  const onAlert = () => { if (!state.alertsMissing) loadAlerts(); };
  source.addEventListener("alert", onAlert);
  source.addEventListener("control_action", () => loadActions());
  source.addEventListener("policy_decision", () => loadDecisions());
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { loadAgents(); loadCharts(); loadRecommendations(); loadViews(); }, 300);
}

function refreshAll() {
  loadHealth(); loadAgents(); loadAlerts(); loadSilences(); loadActions(); loadDecisions(); loadRecommendations();
  loadViews(); // tasks and queues (views.js)
  if (state.agent) loadCharts();
}

// ---------- wiring ----------
function wire() {
  wireViews(); // tasks and queues (views.js)
  const saved = localStorage.getItem("vsmmon.token");
  if (saved) $("#token").value = saved;
  $("#token").addEventListener("change", () => localStorage.setItem("vsmmon.token", token()));
  const redraw = debounce(renderAgents, 120);
  $("#agent-filter").addEventListener("input", redraw);
  $("#agent-status").addEventListener("change", renderAgents);
  $("#agent-kind").addEventListener("change", renderAgents);
  $("#agents thead").addEventListener("click", (e) => {
    const key = e.target.dataset.sort;
    if (!key) return;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
    renderAgents();
  });
  $("#agents tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    if (!row || !row.dataset.id) return;
    const agent = state.agents.find((a) => a.id === row.dataset.id);
    if (!agent || ["queue", "broker"].includes(agent.kind)) return;
    state.agent = agent.id;
    $("#chart-agent").value = agent.id;
    renderAgents();
    loadCharts();
  });
  $("#chart-agent").addEventListener("change", (e) => { state.agent = e.target.value; renderAgents(); loadCharts(); });
  for (const box of ["#actions", "#decisions"]) {
    $(box).addEventListener("click", (e) => {
      const link = e.target.closest("a");
      if (!link) return;
      if (link.dataset.chartAgent) chartAgent(link.dataset.chartAgent);
      if (link.dataset.alertLink) { e.preventDefault(); showAlert(link.dataset.alertLink); }
    });
  }
  document.querySelectorAll(".windows button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll(".windows button").forEach((x) => x.classList.toggle("on", x === b));
    state.window = Number(b.dataset.window);
    loadCharts();
  }));
  $("#alert-filter").addEventListener("change", loadAlerts);
  $("#alerts").addEventListener("click", (e) => {
    if (e.target.dataset.ack) alertAction(e.target.dataset.ack, "ack");
    if (e.target.dataset.resolve) alertAction(e.target.dataset.resolve, "resolve");
    if (e.target.dataset.silence) {
      const form = $("#silence-form");
      form.matcher.value = `target=${e.target.dataset.silence}`;
      $("#silence-box").open = true;
      form.comment.focus();
    }
  });
  $("#silence-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target;
    silence(f.matcher.value, Number(f.minutes.value), f.comment.value);
  });
  $("#silences").addEventListener("click", async (e) => {
    if (!e.target.dataset.unsilence) return;
    const r = await api(`/api/v1/silences/${encodeURIComponent(e.target.dataset.unsilence)}`, { method: "DELETE" });
    if (!r.ok) alert(`removing the silence failed (${r.status})`);
    loadSilences();
  });
  setInterval(() => document.querySelectorAll("#agents td[title]").forEach((td) => { td.textContent = ago(td.title); }), 5000);
}

async function start() {
  wire();
  const probe = await api("/api/v1/dashboard/agents", { headers: { Authorization: "" } });
  state.readsNeedToken = probe.status === 401;
  refreshAll();
  connect();
}

start();
