// The API's operations, listed from /openapi.json: served by VSMMON_HTTP_DOCS=true in place of FastAPI's
// Swagger UI, which loads its code from a CDN (and runs an inline script the Content-Security-Policy refuses).
"use strict";

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function parameters(op) {
  const listed = (op.parameters || []).map((p) => `${esc(p.name)} <span class="muted">(${esc(p.in)}${p.required ? ", required" : ""})</span>`);
  if (op.requestBody) listed.push(`body <span class="muted">(${esc(Object.keys(op.requestBody.content || {}).join(", "))})</span>`);
  return listed.length ? `<div class="meta">${listed.join(", ")}</div>` : "";
}

async function show() {
  const box = document.getElementById("operations");
  const response = await fetch("/openapi.json");
  if (!response.ok) { box.textContent = `/openapi.json: ${response.status}`; return; }
  const spec = await response.json();
  const rows = [];
  for (const [path, ops] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(ops)) {
      rows.push(`<div class="item"><b>${esc(method.toUpperCase())}</b> <code>${esc(path)}</code>
        ${esc(op.summary)}<div>${esc(op.description)}</div>${parameters(op)}</div>`);
    }
  }
  box.innerHTML = rows.join("") || "no operations";
}

show();
