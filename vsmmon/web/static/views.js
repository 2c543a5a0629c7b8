// vsmmon dashboard, the tasks and queues views: what Flower is opened for. One row per task name across the
// fleet (GET /api/v1/tasks) and one per queue (GET /api/v1/queues), sorted and filtered on the page; a row
// opens its last hour and, for a task, its last failures. Loaded before app.js, whose helpers ($, esc, num,
// api, ago, drawChart, debounce) these functions call once the page runs; app.js calls loadViews and wireViews.
"use strict";

const VIEW_ROWS_SHOWN = 1000; // rows drawn of the sorted, filtered list (500 task names all show): the counts say how many match
const TREND = { up: "↑", down: "↓", flat: "→" };
const TREND_ORDER = { up: 2, flat: 1, down: 0 };
const DRAIN_STATES = { draining: "healthy", growing: "warning", stalled: "critical", unreadable: "critical" };
const SHOWN_WORKERS = 3; // a queue's summary names this many of its consumers

const views = {
  tasks: {
    rows: [], sort: { key: "rate_per_s", dir: -1 }, open: null, signature: null,
    key: (r) => r.name, table: "#tasks", filter: "#task-filter",
    // what each column sorts by (the row's own field where not listed)
    by: { workers: (r) => r.workers.length, trend: (r) => TREND_ORDER[r.trend_5m] ?? null,
          last_failure: (r) => r.last_failure?.at ?? null },
  },
  queues: {
    rows: [], sort: { key: "messages", dir: -1 }, open: null, signature: null,
    key: (r) => r.name, table: "#queues", filter: "#queue-filter",
    by: { workers: (r) => r.workers.length },
  },
};

// ---------- figures ----------
const seconds = (v) => {
  if (v === null || v === undefined) return "–";
  if (v < 1) return `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`;
  return v < 90 ? `${v.toFixed(v < 10 ? 2 : 1)} s` : duration(v);
};
const duration = (v) => {
  if (v === null || v === undefined) return "–";
  return v < 90 ? `${v.toFixed(0)} s` : v < 5400 ? `${(v / 60).toFixed(0)} min` : `${(v / 3600).toFixed(1)} h`;
};
const percent = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(v > 0 && v < 0.01 ? 2 : 1)} %`);
const failState = (v) => (!v ? "" : v >= 0.1 ? "critical" : "warning");
const arrow = (t, over) => (TREND[t] ? `<span class="trend" data-t="${t}" title="${t} over ${over}">${TREND[t]}</span>`
  : `<span class="trend muted" title="no trend over ${over} yet">·</span>`);

function drainText(q) {
  if (q.state === "empty") return "empty";
  if (q.state === "draining") return `in ${duration(q.drain_time_s)}`;
  if (q.state === "holding") return "never: holds steady";
  if (q.state === "growing") return "never: growing";
  if (q.state === "stalled") return "never: no consumer";
  if (q.state === "unreadable") return "broker unreadable";
  return "–"; // no rates yet
}

// ---------- the shared table machinery ----------
function sortedRows(view, text) {
  const { key, dir } = view.sort;
  const value = view.by[key] || ((r) => r[key]);
  return view.rows
    .filter((r) => !text || view.key(r).toLowerCase().includes(text))
    .map((r) => [value(r), r])
    .sort(([a, x], [b, y]) => {
      if (a === b || (a == null && b == null)) return view.key(x) < view.key(y) ? -1 : 1;
      if (a === null || a === undefined) return 1; // unknown figures last, whichever the direction
      if (b === null || b === undefined) return -1;
      return (a < b ? -1 : 1) * dir;
    })
    .map(([, r]) => r);
}

function sortHeads(view) {
  document.querySelectorAll(`${view.table} th`).forEach((th) => {
    th.className = th.dataset.sort === view.sort.key ? (view.sort.dir > 0 ? "asc" : "desc") : "";
  });
}

function resort(view, key, firstDir) {
  view.sort = { key, dir: view.sort.key === key ? -view.sort.dir : firstDir };
}

// a view's rows from its API (`field` of the answer); drawn again only when they changed
async function loadRows(view, path, field, counts, render) {
  const r = await api(path);
  if (!r.ok) { $(counts).textContent = `${field} unavailable (${r.status})`; return; }
  const signature = JSON.stringify(r.body[field]);
  if (signature === view.signature) return;
  view.signature = signature;
  view.rows = r.body[field];
  render();
}

// ---------- tasks ----------
function taskLine(r) {
  const last = r.last_failure;
  const failure = last ? `<span title="${esc(`${last.exception}: ${last.message} (on ${last.worker}, ${last.at})`)}">`
    + `${esc(last.exception)}, ${ago(last.at)}</span>` : "–";
  return `<tr data-name="${esc(r.name)}"${r.name === views.tasks.open ? ' class="selected"' : ""}>
    <td>${esc(r.name)}</td><td>${num(r.rate_per_s)}</td>
    <td data-s="${failState(r.failure_ratio)}">${percent(r.failure_ratio)}</td><td>${num(r.retries_per_s)}</td>
    <td>${seconds(r.runtime_p50_s)}</td><td>${seconds(r.runtime_p95_s)}</td><td>${seconds(r.runtime_p99_s)}</td>
    <td>${seconds(r.wait_p50_s)}</td><td>${seconds(r.wait_p95_s)}</td>
    <td title="${esc(r.workers.join(", "))}">${r.workers.length}</td>
    <td>${arrow(r.trend_5m, "5 min")} ${arrow(r.trend_1h, "1 h")}</td><td>${failure}</td></tr>`;
}

function renderTasks() {
  const view = views.tasks;
  const text = $("#task-filter").value.trim().toLowerCase();
  const failingOnly = $("#task-failing").checked;
  const shown = sortedRows(view, text).filter((r) => !failingOnly || r.failure_ratio > 0);
  const failing = view.rows.filter((r) => r.failure_ratio > 0).length;
  $("#task-counts").textContent = `${view.rows.length} task names, ${failing} failing, ${shown.length} shown`;
  $("#tasks tbody").innerHTML = shown.length ? shown.slice(0, VIEW_ROWS_SHOWN).map(taskLine).join("")
    : `<tr class="empty"><td colspan="12" class="muted">${view.rows.length
      ? "no task name matches" : "no live worker reports a task yet: the vsmmon plugin counts them (see the README)"}</td></tr>`;
  $("#tasks-more").textContent = shown.length > VIEW_ROWS_SHOWN
    ? `${shown.length - VIEW_ROWS_SHOWN} more match: narrow the filter to see them` : "";
  sortHeads(view);
}

// a row opened: marked in its table, its detail box shown and read (null when another row was opened meanwhile)
async function openDetail(view, what, name, render) {
  view.open = name;
  render();
  const box = $(`#${what}-detail`);
  box.hidden = false;
  box.dataset.name = name;
  $(`#${what}-detail-name`).textContent = name;
  const r = await api(`/api/v1/${what}s/${encodeURIComponent(name)}`);
  return view.open === name ? r : null;
}

function detailCharts(holder, charts) {
  if (holder.children.length) return;
  holder.innerHTML = charts.map(([id, title]) =>
    `<div class="chart" id="chart-${id}"><h4>${title}</h4><div class="plot"></div><div class="note"></div></div>`).join("");
}

const TASK_CHARTS = [["task-rate", "Runs finished a second"], ["task-failures", "Failures a second"],
  ["task-runtime", "Runtime (the slowest worker's)"]];

async function openTask(name) {
  const r = await openDetail(views.tasks, "task", name, renderTasks);
  if (!r) return; // another name was opened meanwhile
  if (!r.ok) {
    $("#task-detail-summary").textContent = r.status === 404 ? "no live worker reports it any more" : `unavailable (${r.status})`;
    return;
  }
  const { task: t, failures, charts } = r.body;
  $("#task-detail-summary").textContent = `${num(t.rate_per_s)} runs/s, ${percent(t.failure_ratio)} failed over 5 min; `
    + `${num(t.succeeded_total + t.failed_total, 0)} finished on ${t.workers.length} worker${t.workers.length === 1 ? "" : "s"}`;
  detailCharts($("#task-charts"), TASK_CHARTS);
  drawChart("task-rate", "", { unit: "runs/s", lines: [{ name: "finished", points: charts.finished_per_s }] });
  drawChart("task-failures", "", { unit: "failures/s", lines: [{ name: "failed", points: charts.failed_per_s }] });
  drawChart("task-runtime", "", { unit: "s", lines: ["p50", "p95", "p99"].map((p) =>
    ({ name: p, points: charts[`runtime_${p}_s`] })) });
  $("#task-failures").innerHTML = failures.length ? failures.map((f) => `<div class="item failure" data-task-id="${esc(f.task_id)}">
    <b>${esc(f.exception)}</b>: ${esc(f.message)}${f.arguments ? `<div class="arguments">${esc(f.arguments)}</div>` : ""}
    <div class="meta">on ${agentLink(f.worker)}, ${ago(f.at)} (<span title="${esc(f.at)}">${esc(new Date(f.at).toLocaleString())}</span>), task ${esc(f.task_id)}</div></div>`).join("")
    : `<div class="muted">no failure kept</div>`;
}

function closeDetail(view, box) {
  view.open = null;
  $(box).hidden = true;
  $(box).dataset.name = "";
}

// ---------- queues ----------
function queueLine(q) {
  const own = q.pipeline ? ` <span class="tag" title="one of vsmmon's own queues">vsmmon</span>` : "";
  return `<tr data-name="${esc(q.name)}"${q.name === views.queues.open ? ' class="selected"' : ""}>
    <td>${esc(q.name)}${own}</td><td>${num(q.messages, 0)}</td><td>${num(q.consumers, 0)}</td>
    <td>${q.oldest_age_s === null ? "–" : duration(q.oldest_age_s)}</td>
    <td>${num(q.arrival_per_s)}</td><td>${num(q.drain_per_s)}</td>
    <td data-s="${DRAIN_STATES[q.state] || ""}"${q.error ? ` title="${esc(q.error)}"` : ""}>${drainText(q)}</td>
    <td title="${esc(q.workers.join(", "))}">${q.workers.length}</td></tr>`;
}

function renderQueues() {
  const view = views.queues;
  const text = $("#queue-filter").value.trim().toLowerCase();
  const shown = sortedRows(view, text);
  const waiting = view.rows.filter((q) => q.messages > 0).length;
  $("#queue-counts").textContent = `${view.rows.length} queues, ${waiting} with messages waiting, ${shown.length} shown`;
  $("#queues tbody").innerHTML = shown.length ? shown.slice(0, VIEW_ROWS_SHOWN).map(queueLine).join("")
    : `<tr class="empty"><td colspan="8" class="muted">${view.rows.length ? "no queue matches" : "no queue collected yet"}</td></tr>`;
  sortHeads(view);
}

const QUEUE_CHARTS = [["queue-messages", "Messages waiting"], ["queue-age", "Oldest message's age"],
  ["queue-consumers", "Consumers"]];

async function openQueue(name) {
  const r = await openDetail(views.queues, "queue", name, renderQueues);
  if (!r) return;
  if (!r.ok) {
    $("#queue-detail-summary").textContent = r.status === 404 ? "not a live queue any more" : `unavailable (${r.status})`;
    return;
  }
  const { queue: q, charts } = r.body;
  const more = q.workers.length > SHOWN_WORKERS ? ` and ${q.workers.length - SHOWN_WORKERS} more` : "";
  const by = q.workers.length ? `consumed by ${q.workers.slice(0, SHOWN_WORKERS).join(", ")}${more}`
    : "no live worker consumes it";
  $("#queue-detail-summary").textContent = `${num(q.messages, 0)} waiting, drains ${drainText(q)}; ${by}`;
  detailCharts($("#queue-charts"), QUEUE_CHARTS);
  drawChart("queue-messages", "", { unit: "messages", lines: [{ name: "messages", points: charts.messages }] });
  drawChart("queue-age", "", { unit: "s", lines: [{ name: "oldest", points: charts.oldest_age_s }] });
  drawChart("queue-consumers", "", { unit: "consumers", lines: [{ name: "consumers", points: charts.consumers }] });
}

// ---------- live updates and wiring ----------
function loadViews() {
  loadRows(views.tasks, "/api/v1/tasks", "tasks", "#task-counts", renderTasks);
  loadRows(views.queues, "/api/v1/queues", "queues", "#queue-counts", renderQueues);
  if (views.tasks.open) openTask(views.tasks.open);
  if (views.queues.open) openQueue(views.queues.open);
}

function wireViews() {
  $("#task-filter").addEventListener("input", debounce(renderTasks, 120));
  $("#task-failing").addEventListener("change", renderTasks);
  $("#queue-filter").addEventListener("input", debounce(renderQueues, 120));
  for (const [view, render, open] of [[views.tasks, renderTasks, openTask], [views.queues, renderQueues, openQueue]]) {
    $(`${view.table} thead`).addEventListener("click", (e) => {
      const th = e.target.closest("th");
      if (!th || !th.dataset.sort) return;
      resort(view, th.dataset.sort, th.dataset.first === "asc" ? 1 : -1);
      render();
    });
    $(`${view.table} tbody`).addEventListener("click", (e) => {
      const row = e.target.closest("tr");
      if (row && row.dataset.name) open(row.dataset.name);
    });
  }
  $("#task-detail-close").addEventListener("click", () => { closeDetail(views.tasks, "#task-detail"); renderTasks(); });
  $("#queue-detail-close").addEventListener("click", () => { closeDetail(views.queues, "#queue-detail"); renderQueues(); });
  $("#task-failures").addEventListener("click", (e) => {
    const link = e.target.closest("a");
    if (link && link.dataset.chartAgent) chartAgent(link.dataset.chartAgent);
  });
}
