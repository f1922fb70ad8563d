// Circuit OS console: a static page on the JSON API. No framework, no build, no CDN.
// Views (by URL hash): #/runs, #/run/<id>, #/circuits, #/circuit/<name>, #/dead.
"use strict";

const TOKEN_KEY = "circuit-os.token";
const PAGE = 100; // runs per page; older pages load as the list is scrolled
const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const ENDED = new Set(["succeeded", "failed", "cancelled"]);
const $ = (sel, root = document) => root.querySelector(sel);

// --- small DOM helpers (text always goes in as text, never as HTML) ---------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

const badge = (status) => el("span", { class: `badge status-${status}` }, status);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const ms = (v) => (v === null || v === undefined ? "" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
const json = (v) => el("pre", {}, JSON.stringify(v, null, 2));

// --- the API, with the caller's own credentials ------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(path, { ...options, headers });
  if (r.status === 204) return null;
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, (body.error && body.error.message) || r.statusText);
  return body;
}

function notice(message, error = false) {
  const box = $("#notice");
  box.hidden = !message;
  box.className = error ? "error" : "";
  box.textContent = message || "";
}

function failed(err) {
  if (err.status === 401) notice(`Sign in: paste an API key or a JWT above (${err.message}).`, true);
  else if (err.status === 403) notice(`Not allowed: ${err.message}`, true);
  else notice(err.message || String(err), true);
}

// --- views: each returns a stop() that ends its polling ----------------------------------

function runsView(root, params) {
  const filters = { circuit: params.get("circuit") || "", status: params.get("status") || "", event: params.get("event") || "" };
  const rows = new Map(); // run id -> {tr, run}
  let cursor = null;
  let loading = false;
  let stopped = false;

  const form = el(
    "form",
    { class: "filters", id: "filters" },
    el("input", { name: "circuit", placeholder: "circuit", value: filters.circuit, list: "circuit-names" }),
    el("datalist", { id: "circuit-names" }),
    el(
      "select",
      { name: "status" },
      ["", "running", "succeeded", "failed", "cancelled"].map((s) => el("option", { value: s, selected: s === filters.status }, s || "any status")),
    ),
    el("input", { name: "event", placeholder: "event id", value: filters.event }),
    el("button", { type: "submit" }, "Filter"),
    el("span", { class: "muted", id: "run-count" }),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ["circuit", "status", "event"]) if (form.elements[k].value) q.set(k, form.elements[k].value);
    location.hash = `#/runs?${q}`;
  });
  const tbody = el("tbody");
  const table = el(
    "table",
    { id: "runs" },
    el("thead", {}, el("tr", {}, ["status", "circuit", "run", "event", "started", "ended", "error"].map((h) => el("th", {}, h)))),
    tbody,
  );
  const more = el("div", { class: "more" }, el("button", { id: "more", onclick: () => loadOlder() }, "Load older runs"));
  root.append(el("h2", {}, "Runs"), form, table, more);
  api("/v1/circuits").then((c) => $("#circuit-names").append(...c.circuits.map((x) => el("option", { value: x.name })))).catch(() => {});

  const query = (extra) => {
    const q = new URLSearchParams(extra);
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    return `/v1/runs?${q}`;
  };

  function row(run) {
    const tr = el("tr", { class: "run-row", "data-id": run.id, onclick: () => (location.hash = `#/run/${encodeURIComponent(run.id)}`) });
    fill(tr, run);
    return tr;
  }

  function fill(tr, run) {
    tr.dataset.status = run.status;
    tr.replaceChildren(
      el("td", {}, badge(run.status)),
      el("td", {}, run.circuit || ""),
      el("td", { class: "mono" }, run.id.slice(0, 12)),
      el("td", { class: "mono" }, run.event_id || ""),
      el("td", {}, when(run.started_at)),
      el("td", {}, when(run.ended_at)),
      el("td", { class: "err" }, (run.error || "").slice(0, 120)),
    );
  }

  function update(run) {
    const seen = rows.get(run.id);
    if (!seen) return false;
    if (seen.run.status !== run.status || seen.run.ended_at !== run.ended_at) fill(seen.tr, run);
    seen.run = run;
    return true;
  }

  const newer = (a, b) => (a.started_at || "") > (b.started_at || "") || ((a.started_at || "") === (b.started_at || "") && a.id > b.id);

  function insert(run) {
    // a new run goes above the first shown run it is newer than (new runs are near the top)
    const tr = row(run);
    let before = null;
    for (const other of tbody.children) {
      if (newer(run, rows.get(other.dataset.id).run)) {
        before = other;
        break;
      }
    }
    tbody.insertBefore(tr, before);
    rows.set(run.id, { tr, run });
  }

  function count() {
    $("#run-count").textContent = `${rows.size} shown${cursor ? "" : " (all)"}`;
    $("#more").disabled = !cursor;
  }

  async function loadOlder() {
    if (loading || stopped || (!cursor && rows.size)) return;
    loading = true;
    try {
      const page = await api(query({ limit: PAGE, ...(cursor ? { cursor } : {}) }));
      const frag = document.createDocumentFragment();
      for (const run of page.runs) {
        if (update(run)) continue;
        const tr = row(run);
        rows.set(run.id, { tr, run });
        frag.append(tr);
      }
      tbody.append(frag);
      cursor = page.next_cursor;
      count();
    } catch (err) {
      failed(err);
    } finally {
      loading = false;
    }
  }

  async function poll() {
    // newest runs (new ones, and status changes near the top), then runs shown as running further down
    const page = await api(query({ limit: 50 }));
    for (const run of page.runs.slice().reverse()) if (!update(run)) insert(run);
    const top = new Set(page.runs.map((r) => r.id));
    const stale = [...rows.values()].filter((r) => !ENDED.has(r.run.status) && !top.has(r.run.id));
    if (stale.length) {
      const running = await api(query({ limit: 500, status: "running" }));
      const still = new Set(running.runs.map((r) => r.id));
      running.runs.forEach(update);
      for (const r of stale.filter((s) => !still.has(s.run.id)).slice(0, 20)) {
        update(await api(`/v1/runs/${encodeURIComponent(r.run.id)}`));
      }
    }
    count();
  }

  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && cursor && loadOlder());
  observer.observe(more);
  loadOlder();
  return every(poll, () => {
    stopped = true;
    observer.disconnect();
  });
}

function every(fn, onStop) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      failed(err);
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (onStop) onStop();
  };
}

// --- one run -------------------------------------------------------------------------------

const RANK = ["running", "retrying", "waiting", "failed", "cancelled", "succeeded"];

function nodeStatus(nodeId, steps) {
  // a step inside a foreach is recorded once per item as "<loop>[i].<id>"; the node shows the liveliest
  const mine = steps.filter((s) => s.step_id === nodeId || s.step_id.endsWith(`].${nodeId}`));
  if (!mine.length) return "pending";
  return mine.map((s) => s.status).sort((a, b) => RANK.indexOf(a) - RANK.indexOf(b))[0];
}

function timeline(steps, run) {
  const W = 760;
  const L = 180; // label column
  const R = 110; // room for the duration text
  const H = 26;
  const now = Date.now();
  const t = (iso) => (iso ? Date.parse(iso) : null);
  const sorted = steps.slice().sort((a, b) => (t(a.started_at) || 0) - (t(b.started_at) || 0));
  const starts = sorted.map((s) => t(s.started_at)).filter((x) => x !== null);
  const t0 = Math.min(t(run.started_at) || Infinity, ...starts);
  const ends = sorted.map((s) => t(s.ended_at) || (s.status === "running" ? now : t(s.started_at)));
  const t1 = Math.max(t0 + 1, t(run.ended_at) || 0, ...ends.filter((x) => x !== null), ENDED.has(run.status) ? 0 : now);
  const span = t1 - t0;
  const x = (ts) => L + ((ts - t0) / span) * (W - L - R);
  const height = sorted.length * H + 24;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${height}`, width: "100%", role: "img", "aria-label": "step timeline", id: "timeline" });
  chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: height - 18, y2: height - 18 }));
  for (const f of [0, 0.5, 1]) {
    chart.append(svg("text", { class: "tick", x: x(t0 + f * span), y: height - 4, "text-anchor": "middle" }, ms(f * span)));
  }
  sorted.forEach((s, i) => {
    const start = t(s.started_at) || t0;
    const end = t(s.ended_at) || (s.status === "running" ? now : start);
    const y = i * H + 4;
    const w = Math.max(3, x(end) - x(start));
    const label = s.duration_ms !== null ? ms(s.duration_ms) : s.status === "running" ? `${ms(now - start)}…` : "";
    const attempts = s.attempts > 1 ? ` · ${s.attempts} attempts` : "";
    chart.append(
      svg(
        "g",
        { class: `bar status-${s.status}`, "data-step": s.step_id },
        svg("title", {}, `${s.step_id} (${s.action || ""}): ${s.status}, attempt ${s.attempts}${s.duration_ms !== null ? `, ${ms(s.duration_ms)}` : ""}`),
        svg("text", { x: 0, y: y + 14 }, s.step_id.length > 26 ? `${s.step_id.slice(0, 25)}…` : s.step_id),
        svg("rect", { x: x(start), y, width: w, height: H - 8 }),
        svg("text", { class: "dur", x: x(start) + w + 6, y: y + 14 }, label + attempts),
      ),
    );
  });
  return chart;
}

function graphView(graph, steps, id = "graph") {
  const ROW = 44;
  const IND = 26;
  const BOX = 380;
  const nodes = graph.nodes;
  const pos = new Map();
  let y = 8;
  let section = "steps";
  const parts = [];
  for (const n of nodes) {
    if (n.section !== section) {
      section = n.section;
      parts.push(svg("text", { class: "edge-label", x: 4, y: y + 10 }, "on failure"));
      y += 18;
    }
    pos.set(n.id, { x: 4 + n.depth * IND, y });
    y += ROW;
  }
  const chart = svg("svg", { viewBox: `0 0 ${BOX + 12} ${y}`, width: BOX + 12, class: "graph", role: "img", "aria-label": "circuit graph", id });
  for (const e of graph.edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    const d = e.kind === "next" ? `M${a.x + 12},${a.y + 32} V${b.y}` : `M${a.x + 12},${a.y + 32} V${b.y + 16} H${b.x}`;
    chart.append(svg("path", { class: `edge edge-${e.kind}`, d, "data-source": e.source, "data-target": e.target }));
    if (e.label) chart.append(svg("text", { class: "edge-label", x: a.x + 16, y: b.y + 12 }, e.label));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const status = steps ? nodeStatus(n.id, steps) : "pending";
    const label = `${n.kind === "action" ? "" : `${n.kind} · `}${n.label}`;
    chart.append(
      svg(
        "g",
        { class: `node status-${status}`, "data-step": n.id, transform: `translate(${p.x},${p.y})` },
        svg("title", {}, `${n.id}: ${n.label} (${status})`),
        svg("rect", { width: BOX - p.x, height: 32 }),
        svg("circle", { class: "dot", cx: 12, cy: 16, r: 5 }),
        svg("text", { x: 24, y: 14, "font-weight": 600 }, n.id),
        svg("text", { class: "kind", x: 24, y: 27 }, label.length > 44 ? `${label.slice(0, 43)}…` : label),
      ),
    );
  }
  chart.append(...parts);
  return chart;
}

function runView(root, runId) {
  let graph = null;
  let event = undefined;
  const head = el("div", { class: "card", id: "run-head" });
  const timeBox = el("div", { class: "card" }, el("h3", {}, "Timeline"), el("div", { id: "timeline-box" }));
  const graphBox = el("div", { class: "card" }, el("h3", {}, "Circuit"), el("div", { id: "graph-box" }));
  const stepsBox = el("div", { class: "card" }, el("h3", {}, "Steps"), el("div", { id: "steps-box" }));
  const eventBox = el("div", { class: "card" }, el("h3", {}, "Event"), el("div", { id: "event-box" }));
  root.append(el("h2", {}, "Run ", el("span", { class: "mono" }, runId)), head, el("div", { class: "grid2" }, el("div", {}, timeBox, stepsBox), el("div", {}, graphBox, eventBox)));
  const legend = el("div", { class: "legend" }, RANK.concat("pending").map((s) => el("span", { class: `status-${s}` }, s)));

  async function act(what) {
    try {
      const done = await api(`/v1/runs/${encodeURIComponent(runId)}/${what}`, { method: "POST" });
      notice(what === "retry" ? `Retried${done.forgotten.length ? `; runs again from ${done.forgotten.join(", ")}` : ""}.` : `Cancel: ${done.state}.`);
      await refresh();
    } catch (err) {
      failed(err);
    }
  }

  async function refresh() {
    const run = await api(`/v1/runs/${encodeURIComponent(runId)}`);
    if (graph === null && run.circuit) graph = await api(`/v1/circuits/${encodeURIComponent(run.circuit)}/graph`).catch(() => false);
    if (event === undefined) event = await api(`/v1/runs/${encodeURIComponent(runId)}/event`).catch(() => null);
    head.replaceChildren(
      el(
        "dl",
        { class: "kv" },
        el("dt", {}, "status"), el("dd", { id: "run-status" }, badge(run.status)),
        el("dt", {}, "circuit"), el("dd", {}, el("a", { href: `#/circuit/${run.circuit}` }, run.circuit || ""), ` version ${run.circuit_version || "?"}`),
        el("dt", {}, "event"), el("dd", { class: "mono" }, `${run.event_type || ""} ${run.event_id || ""}`),
        el("dt", {}, "started"), el("dd", {}, when(run.started_at)),
        el("dt", {}, "ended"), el("dd", {}, when(run.ended_at)),
        run.error ? [el("dt", {}, "error"), el("dd", { class: "err" }, run.error)] : null,
        run.parent_run_id ? [el("dt", {}, "parent"), el("dd", {}, el("a", { href: `#/run/${run.parent_run_id}` }, run.parent_run_id))] : null,
        run.children.length ? [el("dt", {}, "children"), el("dd", {}, run.children.map((c) => [el("a", { href: `#/run/${c}`, class: "mono" }, c.slice(0, 12)), " "]))] : null,
      ),
      el(
        "div",
        { class: "actions" },
        el("button", { id: "retry", class: "primary", disabled: run.status !== "failed" && run.status !== "cancelled", onclick: () => act("retry") }, "Retry"),
        el("button", { id: "cancel", class: "danger", disabled: run.status !== "running", onclick: () => act("cancel") }, "Cancel"),
      ),
    );
    $("#timeline-box").replaceChildren(run.steps.length ? timeline(run.steps, run) : el("p", { class: "muted" }, "No step has started yet."));
    $("#graph-box").replaceChildren(legend, graph ? graphView(graph, run.steps) : el("p", { class: "muted" }, "The circuit is not known to this server."));
    $("#steps-box").replaceChildren(
      el(
        "table",
        { id: "steps" },
        el("thead", {}, el("tr", {}, ["step", "status", "attempts", "duration", "output or error"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          run.steps.map((s) =>
            el(
              "tr",
              { "data-step": s.step_id },
              el("td", { class: "mono" }, s.step_id, el("div", { class: "muted" }, s.action || "")),
              el("td", {}, badge(s.status)),
              el("td", {}, s.attempts),
              el("td", {}, ms(s.duration_ms)),
              s.error ? el("td", { class: "err" }, s.error) : el("td", {}, s.output === null ? "" : json(s.output)),
            ),
          ),
        ),
      ),
    );
    $("#event-box").replaceChildren(
      event
        ? el("dl", { class: "kv" }, el("dt", {}, "type"), el("dd", {}, event.type), el("dt", {}, "source"), el("dd", {}, event.source), el("dt", {}, "subject"), el("dd", {}, event.subject || ""), el("dt", {}, "time"), el("dd", {}, when(event.time)), el("dt", {}, "data"), el("dd", {}, json(event.data)))
        : el("p", { class: "muted" }, "Not recorded (yet)."),
    );
  }

  refresh().catch(failed);
  return every(refresh);
}

// --- circuits and dead letters -------------------------------------------------------------

function circuitsView(root) {
  const tbody = el("tbody");
  root.append(
    el("h2", {}, "Circuits"),
    el("table", { id: "circuits" }, el("thead", {}, el("tr", {}, ["name", "trigger", "version", "enabled", "origin", "tenant"].map((h) => el("th", {}, h)))), tbody),
  );
  api("/v1/circuits")
    .then((c) =>
      tbody.append(
        ...c.circuits.map((x) =>
          el(
            "tr",
            { class: "run-row", "data-name": x.name, onclick: () => (location.hash = `#/circuit/${x.name}`) },
            el("td", {}, x.name),
            el("td", { class: "mono" }, x.trigger, x.when ? el("div", { class: "muted" }, `when ${x.when}`) : null),
            el("td", { class: "mono" }, x.version),
            el("td", {}, x.enabled ? "yes" : "no"),
            el("td", {}, x.origin),
            el("td", {}, x.tenant || "every tenant"),
          ),
        ),
      ),
    )
    .catch(failed);
  return () => {};
}

function circuitView(root, name) {
  const box = el("div", { class: "grid2" });
  root.append(el("h2", {}, "Circuit ", name), box);
  Promise.all([
    api(`/v1/circuits/${encodeURIComponent(name)}`),
    api(`/v1/circuits/${encodeURIComponent(name)}/graph`),
    api(`/v1/runs?${new URLSearchParams({ circuit: name, limit: 10 })}`),
  ])
    .then(([c, graph, runs]) => {
      box.append(
        el(
          "div",
          {},
          el("div", { class: "card" }, el("dl", { class: "kv" }, el("dt", {}, "trigger"), el("dd", { class: "mono" }, c.trigger), el("dt", {}, "when"), el("dd", { class: "mono" }, c.when || ""), el("dt", {}, "version"), el("dd", { class: "mono" }, c.version), el("dt", {}, "enabled"), el("dd", {}, c.enabled ? "yes" : "no"), el("dt", {}, "origin"), el("dd", {}, c.origin, c.file ? ` (${c.file})` : ""))),
          el("div", { class: "card" }, el("h3", {}, "Versions"), c.versions.length ? el("table", { id: "versions" }, el("tbody", {}, c.versions.map((v) => el("tr", {}, el("td", {}, v.version), el("td", { class: "mono" }, v.digest.slice(0, 12)), el("td", {}, when(v.created_at)), el("td", {}, v.created_by))))) : el("p", { class: "muted" }, "A file circuit: no deployed versions.")),
          el("div", { class: "card" }, el("h3", {}, "Last runs ", el("a", { href: `#/runs?circuit=${encodeURIComponent(name)}` }, "(all)")), el("table", {}, el("tbody", {}, runs.runs.map((r) => el("tr", { class: "run-row", onclick: () => (location.hash = `#/run/${encodeURIComponent(r.id)}`) }, el("td", {}, badge(r.status)), el("td", { class: "mono" }, r.id.slice(0, 12)), el("td", {}, when(r.started_at))))))),
        ),
        el("div", { class: "card" }, el("h3", {}, "Steps"), graphView(graph, null, "circuit-graph")),
      );
    })
    .catch(failed);
  return () => {};
}

function deadView(root) {
  const tbody = el("tbody");
  let last = null;
  const more = el("button", { id: "more-dead", onclick: () => load() }, "Load older");
  root.append(
    el("h2", {}, "Dead letters"),
    el("table", { id: "dead" }, el("thead", {}, el("tr", {}, ["received", "origin", "field", "error", "raw"].map((h) => el("th", {}, h)))), tbody),
    el("div", { class: "more" }, more),
  );
  async function load() {
    const page = await api(`/v1/events/rejected?${new URLSearchParams({ limit: PAGE, ...(last ? { before: last } : {}) })}`);
    tbody.append(...page.rejected.map((d) => el("tr", { "data-id": d.id }, el("td", {}, when(d.received_at)), el("td", {}, d.origin), el("td", { class: "mono" }, d.field || ""), el("td", { class: "err" }, d.error), el("td", {}, el("pre", {}, d.raw.slice(0, 600))))));
    last = page.rejected.length ? page.rejected[page.rejected.length - 1].id : last;
    more.disabled = page.rejected.length < PAGE;
  }
  load().catch(failed);
  return () => {};
}

// --- routing and sign-in -------------------------------------------------------------------

let stop = () => {};

function route() {
  stop();
  notice("");
  const root = $("#view");
  root.replaceChildren();
  const [path, query] = (location.hash.slice(1) || "/runs").split("?");
  const params = new URLSearchParams(query || "");
  const [, view, arg] = path.split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === (view === "run" ? "runs" : view === "circuit" ? "circuits" : view));
  if (view === "run" && arg) stop = runView(root, decodeURIComponent(arg));
  else if (view === "circuits") stop = circuitsView(root);
  else if (view === "circuit" && arg) stop = circuitView(root, decodeURIComponent(arg));
  else if (view === "dead") stop = deadView(root);
  else stop = runsView(root, params);
}

function showWho() {
  $("#who").textContent = sessionStorage.getItem(TOKEN_KEY) ? "credentials set" : "no credentials";
}

$("#auth").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("#token").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  $("#token").value = "";
  showWho();
  route();
});
$("#signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showWho();
  route();
});
window.addEventListener("hashchange", route);
showWho();
route();
