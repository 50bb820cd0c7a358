// pagan-serve's page: models (gallery, latent walk, model card), scoring, status.
// Plain JS against the JSON API (/v1), no dependencies, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};

// The API's error message (its JSON `{"error": {"code", "message"}}`) or the HTTP status.
async function failure(res) {
  try {
    const v = await res.json();
    return new Error(v.error && v.error.message ? v.error.message : `HTTP ${res.status}`);
  } catch (_) {
    return new Error(`HTTP ${res.status} ${res.statusText}`);
  }
}

// A server started with --token wants `Authorization: Bearer <token>` on writes and
// compute: the page asks for it at the first 401 and keeps it for this tab only.
const TOKEN = "pagan-token";
async function api(method, path, body, headers = {}) {
  const send = (token) => {
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    return fetch(path, { method, body, headers: h });
  };
  const used = sessionStorage.getItem(TOKEN);
  let res = await send(used);
  if (res.status === 401) {
    // Another request may have asked for the token meanwhile; else ask now.
    let token = sessionStorage.getItem(TOKEN);
    if (!token || token === used) {
      token = (window.prompt("This server needs its access token (pagan-serve --token):") || "").trim();
      if (token) sessionStorage.setItem(TOKEN, token);
    }
    if (token && token !== used) res = await send(token);
    if (res.status === 401) sessionStorage.removeItem(TOKEN);
  }
  if (!res.ok && res.status !== 202) throw await failure(res);
  return res;
}

function showError(e) {
  const box = $("error");
  box.textContent = e ? String(e.message || e) : "";
  box.hidden = !e;
}

// ---- pages --------------------------------------------------------------------------
const pages = ["models", "score", "status"];
const loaded = {};
function route() {
  const page = pages.includes(location.hash.slice(1)) ? location.hash.slice(1) : "models";
  for (const p of pages) {
    $(`page-${p}`).hidden = p !== page;
    const link = $(`nav-${p}`);
    if (p === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showError(null);
  if (!loaded[page]) {
    loaded[page] = true;
    ({ models: loadModels, score: loadScore, status: loadStatus })[page]().catch(showError);
  }
}
window.addEventListener("hashchange", route);

// ---- models -------------------------------------------------------------------------
async function loadModels() {
  const list = await (await api("GET", "/v1/models")).json();
  $("models-empty").hidden = list.models.length > 0;
  for (const m of list.models) {
    const full = await (await api("GET", `/v1/models/${encodeURIComponent(m.name)}`)).json();
    $("models").append(modelCard(full));
  }
}

function modelCard(m) {
  const t = m.manifest.training;
  const id = m.name.replace(/[^A-Za-z0-9_-]/g, "_");
  const gallery = el("div", { class: "gallery", id: `gallery-${id}` });
  const seed = el("input", { id: `seed-${id}`, type: "number", min: "0", value: "0" });
  const n = el("input", { id: `n-${id}`, type: "number", min: "1", max: "64", value: "8" });
  // A class-conditional model: all classes in turn (image i gets class i mod K), or one.
  const classes = m.classes || null;
  const cls = classes && el("select", { id: `class-${id}` },
    el("option", { value: "", text: "all classes (cycle)" }),
    ...classes.map((c, i) => el("option", { value: String(i), text: c })));
  const classOf = (i) => (!classes ? null : cls.value === "" ? i % classes.length : Number(cls.value));
  const refresh = () => renderGallery(m.name, gallery, Number(seed.value), Number(n.value), classOf, classes).catch(showError);
  seed.addEventListener("change", refresh);
  n.addEventListener("change", refresh);
  if (cls) cls.addEventListener("change", refresh);
  const newSeed = el("button", { type: "button", id: `new-seed-${id}`, text: "New seed", onclick: () => {
    seed.value = String(Math.floor(Math.random() * 1e9));
    refresh();
  } });
  const from = el("input", { id: `walk-from-${id}`, type: "number", min: "0", value: "1" });
  const to = el("input", { id: `walk-to-${id}`, type: "number", min: "0", value: "2" });
  const steps = el("input", { id: `walk-steps-${id}`, type: "number", min: "2", max: "64", value: "8" });
  const strip = el("div", { class: "walk", id: `walk-${id}`, "aria-label": "latent walk frames" });
  const anim = el("canvas", { class: "anim", id: `walk-anim-${id}`, role: "img", "aria-label": "latent walk, animated" });
  const walk = el("button", { type: "button", id: `walk-go-${id}`, text: "Walk", onclick: () =>
    renderWalk(m.name, strip, anim, Number(from.value), Number(to.value), Number(steps.value),
      cls && cls.value !== "" ? Number(cls.value) : null).catch(showError) });
  const card = el("article", { class: "card", "aria-labelledby": `title-${id}` },
    el("h3", { id: `title-${id}`, text: m.name }),
    el("dl", {},
      el("dt", { text: "dataset" }), el("dd", { text: m.manifest.dataset }),
      el("dt", { text: "image" }), el("dd", { text: `${m.image.channels}x${m.image.height}x${m.image.width}, latent ${m.latent.size}` }),
      el("dt", { text: "iterations" }), el("dd", { text: String(t.iterations) }),
      el("dt", { text: "PA mode" }), el("dd", { text: t.pa_mode }),
      el("dt", { text: "PA levels" }), el("dd", { text: t.pa_level_history.length
        ? t.pa_level_history.map(([it, l]) => `level ${l} at ${it}`).join(", ") : "no level-ups" }),
      el("dt", { text: "final FID / KID" }), el("dd", { text: `${fmt(t.final_fid, 2)} / ${fmt(t.final_kid, 4)}` }),
      el("dt", { text: "provider" }), el("dd", { id: `provider-${id}`, text: m.provider }),
      classes ? el("dt", { text: "classes" }) : null, classes ? el("dd", { text: classes.join(", ") }) : null),
    curve(t.evaluations || []),
    el("h4", { text: "Samples" }),
    el("div", { class: "row" },
      el("label", { for: `seed-${id}`, text: "seed" }), seed,
      el("label", { for: `n-${id}`, text: "n" }), n,
      cls ? el("label", { for: `class-${id}`, text: "class" }) : null, cls, newSeed),
    gallery,
    el("h4", { text: "Latent walk" }),
    el("div", { class: "row" },
      el("label", { for: `walk-from-${id}`, text: "from seed" }), from,
      el("label", { for: `walk-to-${id}`, text: "to seed" }), to,
      el("label", { for: `walk-steps-${id}`, text: "steps" }), steps, walk),
    strip, anim);
  refresh();
  return card;
}

const fmt = (x, d) => (x == null ? "-" : Number(x).toFixed(d));

// FID and KID against iteration: one small SVG chart each (no library).
function curve(evals) {
  const charts = [["fid", "FID", "#0b57d0", 2], ["kid", "KID", "#b3261e", 4]]
    .map(([key, title, color, digits]) => chart(evals.filter((e) => e[key] != null).map((e) => [e.iter, e[key]]), title, color, digits))
    .filter((c) => c);
  if (!charts.length) return el("p", { class: "curve-none", text: "No FID/KID evaluations recorded in this model's run." });
  return el("div", { class: "row curves" }, ...charts);
}

function chart(p, title, color, digits) {
  if (!p.length) return null;
  const ns = "http://www.w3.org/2000/svg";
  const W = 260, H = 150, L = 44, R = 10, T = 22, B = 24;
  const maxIt = Math.max(...p.map((q) => q[0]), 1);
  const lo = Math.min(...p.map((q) => q[1])), hi = Math.max(...p.map((q) => q[1]));
  const x = (it) => L + (it / maxIt) * (W - L - R);
  const y = (v) => H - B - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (H - T - B);
  const svg = document.createElementNS(ns, "svg");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    svg.append(e);
  };
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "curve");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title} by iteration: ${p.map(([it, v]) => `${v.toFixed(digits)} at ${it}`).join(", ")}`);
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#888" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#888" });
  add("polyline", { points: p.map(([it, v]) => `${x(it)},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 });
  for (const [it, v] of p) add("circle", { cx: x(it), cy: y(v), r: 3, fill: color });
  add("text", { x: L, y: 14, "font-size": 12, "font-weight": 600 }, `${title} by iteration`);
  add("text", { x: L - 4, y: y(hi) + 4, "font-size": 10, "text-anchor": "end" }, hi.toFixed(digits));
  if (hi > lo) add("text", { x: L - 4, y: y(lo) + 4, "font-size": 10, "text-anchor": "end" }, lo.toFixed(digits));
  add("text", { x: W - R, y: H - 6, "font-size": 10, "text-anchor": "end" }, String(maxIt));
  add("text", { x: L, y: H - 6, "font-size": 10 }, "0");
  return svg;
}

async function generate(name, body) {
  return api("POST", `/v1/models/${encodeURIComponent(name)}/generate`, JSON.stringify(body),
    { "content-type": "application/json" });
}

// One image per request (seed + i); a class-conditional model's class comes from classOf(i).
async function renderGallery(name, box, seed, n, classOf = () => null, classes = null) {
  const figs = [];
  for (let i = 0; i < n; i++) {
    const c = classOf(i);
    const body = { n: 1, seed: seed + i, format: "png" };
    if (c != null) body.class = c;
    const blob = await (await generate(name, body)).blob();
    const url = URL.createObjectURL(blob);
    const what = c == null ? `seed ${seed + i}` : `seed ${seed + i}, ${classes[c]}`;
    const file = c == null ? `${name}-seed${seed + i}.png` : `${name}-seed${seed + i}-${classes[c]}.png`;
    figs.push(el("figure", {},
      el("img", { src: url, alt: `${name}, ${what}`, "data-seed": String(seed + i) }),
      el("figcaption", {}, el("a", { href: url, download: file, text: what }))));
  }
  for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  box.replaceChildren(...figs);
  box.dataset.seed = String(seed);
}

// A float32 .npy [N, C, H, W] (what format npy returns): shape and values.
function parseNpy(buf) {
  const bytes = new Uint8Array(buf);
  const major = bytes[6];
  const dv = new DataView(buf);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + hlen));
  if (!header.includes("'<f4'")) throw new Error(`unexpected .npy dtype in ${header}`);
  const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter((s) => s.trim()).map(Number);
  return { shape, data: new Float32Array(buf, start + hlen) };
}

function drawFrame(canvas, data, k, [c, h, w]) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const plane = h * w, base = k * c * plane;
  const byte = (v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
  for (let i = 0; i < plane; i++) {
    const r = data[base + i], g = data[base + (c === 3 ? plane : 0) + i], b = data[base + (c === 3 ? 2 * plane : 0) + i];
    img.data[4 * i] = byte(r);
    img.data[4 * i + 1] = byte(g);
    img.data[4 * i + 2] = byte(b);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

const timers = {};
// A class-conditional model walks in class `cls`, or (null) with the server's default cycle.
async function renderWalk(name, strip, anim, from, to, steps, cls = null) {
  const body = { interpolate: { from, to, steps }, format: "npy" };
  if (cls != null) body.class = cls;
  const res = await generate(name, body);
  const { shape, data } = parseNpy(await res.arrayBuffer());
  const [count, c, h, w] = shape;
  const frames = [];
  for (let k = 0; k < count; k++) {
    const cv = el("canvas", { role: "img", "aria-label": `step ${k + 1} of ${count}` });
    drawFrame(cv, data, k, [c, h, w]);
    frames.push(cv);
  }
  strip.replaceChildren(...frames);
  strip.dataset.frames = String(count);
  clearInterval(timers[name]);
  let k = 0;
  const tick = () => { drawFrame(anim, data, k, [c, h, w]); k = (k + 1) % count; };
  tick();
  timers[name] = setInterval(tick, 200);
}

// ---- score --------------------------------------------------------------------------
let chosen = [];
let referenceInfo = {};

async function loadReferences(select) {
  const { references } = await (await api("GET", "/v1/references")).json();
  referenceInfo = Object.fromEntries(references.map((r) => [r.name, r]));
  $("reference").replaceChildren(...references.map((r) => el("option", { value: r.name,
    text: `${r.name} (${r.n == null ? "n unknown" : `${r.n} images`}${r.feature_rows ? ", KID" : ""})` })));
  if (select) $("reference").value = select;
}

async function loadScore() {
  await loadReferences();
  renderHistory();
  const pick = (files) => {
    chosen = Array.from(files);
    $("chosen").textContent = chosen.length ? `${chosen.length} file(s): ${chosen.map((f) => f.name).join(", ")}` : "";
  };
  $("files").addEventListener("change", (e) => pick(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files); });
  $("score-form").addEventListener("submit", (e) => { e.preventDefault(); score().catch(showError).finally(() => { $("score-button").disabled = false; }); });
  $("ref-upload").addEventListener("click", () => uploadReference().catch(showError));
  $("history-clear").addEventListener("click", () => { localStorage.removeItem(HISTORY); renderHistory(); });
}

async function uploadReference() {
  showError(null);
  const name = $("ref-name").value.trim();
  const file = $("ref-file").files[0];
  if (!name || !file) throw new Error("give the reference a name and choose its .npz file");
  // A file that records no resize convention gets this one (pytorch-fid files record none
  // and were made with half_pixel); one that records another is refused with the reason.
  const resize = encodeURIComponent($("ref-resize").value);
  const started = performance.now();
  const res = await api("POST", `/v1/references/${encodeURIComponent(name)}?resize_mode=${resize}`, file,
    { "content-type": "application/octet-stream" });
  // An .npz of images above the job threshold becomes a job: wait for it.
  if (res.status === 202) await follow(await res.json(), started);
  await loadReferences(name);
}

const ARCHIVE = /\.(zip|tar|npz)$/i;
async function score() {
  showError(null);
  $("result").hidden = true;
  if (!chosen.length) throw new Error("choose image files, or one zip, tar or .npz");
  const reference = $("reference").value;
  if (!reference) throw new Error("no reference statistics on this server: upload a .npz first");
  const kid = !!(referenceInfo[reference] && referenceInfo[reference].feature_rows);
  let body, headers = {};
  if (chosen.length === 1 && ARCHIVE.test(chosen[0].name)) {
    body = chosen[0];
    headers["content-type"] = "application/octet-stream";
  } else {
    body = new FormData();
    for (const f of chosen) body.append("file", f, f.name);
  }
  $("score-button").disabled = true;
  const started = performance.now();
  // A reference with features also gives KID and precision/recall/density/coverage.
  const res = await api("POST", `/v1/fid?reference=${encodeURIComponent(reference)}&kid=${kid}&prdc=${kid}`, body, headers);
  let result = await res.json();
  if (res.status === 202) result = await follow(result, started);
  showResult(result, chosen.map((f) => f.name).join(", "));
}

// Polls a job until it ends, showing done/total and the time so far; never blocks the page.
async function follow(accepted, started) {
  const box = $("progress");
  box.hidden = false;
  try {
    for (;;) {
      const job = await (await api("GET", accepted.href)).json();
      $("progress-bar").max = Math.max(job.total, 1);
      $("progress-bar").value = job.done;
      $("progress-text").textContent = `${job.status}: ${job.done} / ${job.total} images, ${((performance.now() - started) / 1000).toFixed(1)} s`;
      if (job.status === "done") return job.result;
      if (job.status === "failed") throw new Error(job.error.message);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    box.hidden = true;
  }
}

function showResult(r, label) {
  const card = $("result");
  card.dataset.fid = String(r.fid);
  card.dataset.precision = r.prdc == null ? "" : String(r.prdc.precision);
  card.dataset.cached = String(r.cached);
  card.replaceChildren(
    el("h3", { text: `FID ${r.fid.toFixed(3)}` }),
    el("dl", {},
      el("dt", { text: "FID" }), el("dd", { id: "result-fid", text: String(r.fid) }),
      el("dt", { text: "KID" }), el("dd", { text: r.kid == null ? "not computed (the reference has no features)" : `${r.kid.toFixed(5)} ± ${r.kid_std.toFixed(5)}` }),
      el("dt", { text: "precision / recall" }), el("dd", { text: r.prdc == null ? "not computed" : `${r.prdc.precision.toFixed(3)} / ${r.prdc.recall.toFixed(3)} (k = ${r.prdc.k_precision_recall})` }),
      el("dt", { text: "density / coverage" }), el("dd", { text: r.prdc == null ? "not computed" : `${r.prdc.density.toFixed(3)} / ${r.prdc.coverage.toFixed(3)} (k = ${r.prdc.k_density_coverage})` }),
      el("dt", { text: "images" }), el("dd", { text: r.reference_n == null ? String(r.n) : `${r.n} (reference: ${r.reference_n})` }),
      el("dt", { text: "reference" }), el("dd", { text: r.reference }),
      el("dt", { text: "resize" }), el("dd", { text: `${r.resize_mode} (${r.provenance.resize_mode_source})` }),
      el("dt", { text: "comparable with" }), el("dd", { text: r.provenance.comparable_with.join("; ") }),
      el("dt", { text: "features" }), el("dd", { text: r.cached ? "from the cache (this set was scored before)" : "computed now" }),
      el("dt", { text: "provider" }), el("dd", { text: r.provider }),
      el("dt", { text: "seconds" }), el("dd", { text: r.seconds.toFixed(2) })),
    r.warnings.length ? el("ul", { class: "warn", "aria-label": "warnings" }, ...r.warnings.map((w) => el("li", { text: w }))) : el("p", { text: "No warnings." }));
  card.hidden = false;
  const h = history();
  h.unshift({ when: new Date().toISOString().slice(0, 19).replace("T", " "), label, reference: r.reference, fid: r.fid, kid: r.kid, n: r.n });
  localStorage.setItem(HISTORY, JSON.stringify(h.slice(0, 100)));
  renderHistory();
}

const HISTORY = "pagan-score-history";
function history() {
  try { return JSON.parse(localStorage.getItem(HISTORY) || "[]"); } catch (_) { return []; }
}
function renderHistory() {
  $("history").tBodies[0].replaceChildren(...history().map((h) => el("tr", {},
    el("td", { text: h.when }), el("td", { text: h.label }), el("td", { text: h.reference }),
    el("td", { text: fmt(h.fid, 3) }), el("td", { text: fmt(h.kid, 5) }), el("td", { text: String(h.n) }))));
}

// ---- status -------------------------------------------------------------------------
async function loadStatus() {
  const res = await fetch("/readyz");
  const r = await res.json();
  const rows = r.models.map((m) => el("li", { text: `${m.name}: ${m.status} on ${m.provider}` }));
  if (r.extractor) rows.push(el("li", { text: `feature extractor: ${r.extractor.status} on ${r.extractor.provider}, resize ${r.extractor.resize_mode}` }));
  else rows.push(el("li", { text: "feature extractor: not loaded (scoring unavailable)" }));
  $("status").replaceChildren(
    el("p", { id: "ready", text: r.ready ? "Ready." : "Not ready: nothing can be served." }),
    el("ul", {}, ...rows),
    el("h3", { text: "Failed to load" }),
    r.failed.length ? el("ul", {}, ...r.failed.map((f) => el("li", { text: `${f.name}: ${f.error}` }))) : el("p", { text: "Nothing failed." }),
    el("p", { text: `${r.references} reference(s); up ${Math.round(r.uptime_seconds)} s.` }));
}

route();
