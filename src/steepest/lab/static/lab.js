// The lab's page: controls → JSON API; server-sent events → curves, pictures, status.
"use strict";
const TOKEN = document.querySelector('meta[name="lab-token"]').content;
const $ = id => document.getElementById(id);
const lab = { racers: [], info: null, extras: {}, status: null, surface: null, surfaceWait: 0, dirty: false };

async function api(path, body, method) {
  const r = await fetch(path, { method: method || (body === undefined ? "GET" : "POST"),
    headers: { "X-Lab-Token": TOKEN, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const out = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) { $("error").textContent = out.error || `HTTP ${r.status}`; throw new Error(out.error); }
  $("error").textContent = "";
  return out;
}

// ---------------------------------------------------------------- events
function onMessage(msg) {
  if (msg.fresh) {
    lab.racers = []; lab.surface = null; lab.extras = {}; lab.surfaceWait = 0;
    lab.info = msg.info; setupDataset(msg.info);
  }
  for (const r of msg.racers) {
    const mine = lab.racers[r.index] || (lab.racers[r.index] = { points: [] });
    mine.label = r.label; mine.done = r.done;
    mine.points.push(...r.points);
  }
  if (msg.extras) { lab.extras = msg.extras; lab.extrasDirty = true; }
  lab.status = msg.status;
  showStatus(msg.status, msg.fresh);
  lab.dirty = true;
}

function showStatus(s, fresh) {
  const r0 = lab.racers[0], last = r0 && r0.points.length ? r0.points[r0.points.length - 1] : null;
  $("step").textContent = last ? last.step : 0;
  $("loss").textContent = last && last.loss !== null ? last.loss.toPrecision(4) : "–";
  $("accuracy").textContent = last && last.test_acc !== undefined ? (100 * last.test_acc).toFixed(1) + "%" : "–";
  $("state").textContent = s.running ? "running" : "paused";
  $("state").dataset.lr = last ? last.lr : "";
  $("message").textContent = s.message || lab.racers.filter(r => r.done).map(r => `${r.label}: ${r.done}`).join("; ");
  if (fresh) fillControls(s.config);
  $("legend").innerHTML = lab.racers.map((r, i) =>
    `<span style="color:${COLORS[i % COLORS.length]}">■ ${r.label}</span>`).join("");
}

function fillControls(c) {
  if (lab.status && lab.status.datasets) $("dataset").innerHTML = lab.status.datasets.map(d => `<option>${d}</option>`).join("");
  for (const k of ["dataset", "activation", "init", "optimizer", "lr", "momentum", "seed"]) $(k).value = c[k];
  $("hidden").value = c.hidden.join(" ");
  $("batch_size").value = c.batch_size;
  $("eps").value = c.eps === null ? "" : c.eps;
  momentumApplies();
}

// μ is greyed out for an optimizer that takes no momentum (the registry's options for it)
function momentumApplies() {
  const opts = lab.choices && lab.choices.optimizer_options[$("optimizer").value];
  $("momentum").disabled = !!opts && !opts.includes("momentum");
}

function setupDataset(info) {
  const img = !!info.image_shape, twoD = info.n_features === 2;
  $("p-boundary").style.display = twoD ? "" : "none";
  for (const id of ["p-anatomy", "p-draw", "p-mistakes"]) $(id).style.display = img ? "" : "none";
  $("plane-note").textContent = `plane: ${info.plane}`;
  $("target").innerHTML = "<option value=''>(predicted class)</option>" +
    Array.from({ length: info.n_classes }, (_, k) => `<option value="${k}">${(info.class_names || [])[k] || k}</option>`).join("");
  $("surface-note").textContent = "";
  if (!lab.shown || lab.shown !== info.name) drawCanvasClear();
  lab.shown = info.name;
}

// ---------------------------------------------------------------- drawing the curves and pictures
function xOf(p) { const ax = $("xaxis").value; return ax === "steps" ? p.step : ax === "samples" ? p.samples : p.seconds; }

function redraw() {
  if (!lab.dirty || document.hidden) return;   // a hidden tab draws when it is shown again
  lab.dirty = false;
  const ser = key => lab.racers.map((r, i) => ({ label: r.label, color: COLORS[i % COLORS.length],
                                                 pts: r.points.map(p => [xOf(p), p[key]]) }));
  const eps = lab.status && lab.status.config.eps;
  linePlot($("c-loss"), ser("loss"), { logy: true, title: "training loss (mean over the batches since the last point), log scale" });
  linePlot($("c-acc"), ser("test_acc"), { title: "test accuracy (on a sample of ≤500 test rows)", ymax: 1 });
  drawGradNorms(eps);
  const r0 = lab.racers[0];
  if (r0) {
    const nl = (r0.points.find(p => p.layers) || { layers: [] }).layers.length;
    const layers = Array.from({ length: nl }, (_, l) => ({ label: `layer${l + 1}`,
      pts: r0.points.filter(p => p.layers).map(p => [xOf(p), p.layers[l]]) }));
    linePlot($("c-layers"), layers, { logy: true, title: "per-layer ‖∇L‖ of the first racer (256 training rows): " +
      layers.map((l, i) => `${l.label} ${["blue", "red", "green", "purple", "orange", "brown"][i % 6]}`).join(", ") });
  }
  drawSurface();
  if (lab.extrasDirty) { lab.extrasDirty = false; drawBoundary(); drawAnatomy(); drawMistakes(); }
}

// ‖∇L‖: thin, the batches' (mean since the last point); thick dashed with dots, the full training set's —
// what the ε rule tests, so the ε line is read against it
function drawGradNorms(eps) {
  const series = [];
  let full = false;
  lab.racers.forEach((r, i) => {
    const color = COLORS[i % COLORS.length];
    series.push({ label: r.label, color, pts: r.points.map(p => [xOf(p), p.grad_norm]) });
    const pts = r.points.filter(p => p.full_grad_norm !== null && p.full_grad_norm !== undefined)
                        .map(p => [xOf(p), p.full_grad_norm]);
    if (pts.length) { full = true; series.push({ label: `${r.label} full set`, color, pts, dash: [6, 3], width: 2.5, dots: true }); }
  });
  linePlot($("c-grad"), series, { logy: true, title: "‖∇L‖, log scale", hline: eps });
  $("grad-note").textContent = "thin line: ‖∇L‖ of the batches (mean since the last point). " + (full
    ? "Thick dashed, with dots: ‖∇L‖ on the full training set, which the ε rule tests. "
    : "‖∇L‖ on the full training set, which the ε rule tests, is drawn thick and dashed when known: " +
      "at every full-batch step, and once an epoch for mini-batches when ε is set. ") +
    (eps ? "Red dashed line: ε." : "");
}

// The loss surface is computed by itself once a path appears and again when a path leaves its box — a
// new θ₀ (reset, race, new settings) means a new plane. It costs the server n² losses on 256 rows, so one
// request at a time, and each automatic one waits twice as long after the last (3 s, 6 s, … up to a minute)
// as the path slows down; the button computes at once.
const SURFACE_FIRST = 3000, SURFACE_MAX = 60000;
async function computeSurface(n) {
  if (lab.surfaceBusy) return;
  const gen = lab.status && lab.status.generation;
  lab.surfaceBusy = true; lab.surfaceAt = performance.now();
  $("surface-note").textContent = "computing…";
  try {
    const s = await api(`/api/surface?n=${n}`);
    if (!lab.status || lab.status.generation !== gen) return;   // θ₀ changed meanwhile: another plane
    lab.surface = s; lab.dirty = true;
    $("surface-note").textContent = s.note + " (blue low, red high, log scale)";
  } catch (err) { $("surface-note").textContent = ""; }            // the error box says why
  finally { lab.surfaceBusy = false; }
}

function surfaceDue() {
  if (lab.surfaceBusy || document.hidden || performance.now() - (lab.surfaceAt || -Infinity) < lab.surfaceWait) return false;
  const last = lab.racers.filter(r => r.points.length).map(r => r.points[r.points.length - 1].ab);
  if (!last.length) return false;
  const s = lab.surface;
  const out = !s || last.some(([a, b]) => a < s.alphas[0] || a > s.alphas[s.alphas.length - 1] ||
                                          b < s.betas[0] || b > s.betas[s.betas.length - 1]);
  if (out) lab.surfaceWait = Math.min(SURFACE_MAX, Math.max(SURFACE_FIRST, 2 * lab.surfaceWait));
  return out;
}

function drawSurface() {
  const c = $("c-surface"), ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.clearRect(0, 0, W, H);
  let box;
  if (lab.surface) {
    const s = lab.surface;
    heatmap(ctx, s.loss, 0, 0, W, H, true);
    box = [s.alphas[0], s.alphas[s.alphas.length - 1], s.betas[0], s.betas[s.betas.length - 1]];
  } else {
    const all = lab.racers.flatMap(r => r.points.map(p => p.ab));
    if (!all.length) return;
    const xs = all.map(a => a[0]), ys = all.map(a => a[1]);
    const pad = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1e-3) * 0.15;
    box = [Math.min(...xs) - pad, Math.max(...xs) + pad, Math.min(...ys) - pad, Math.max(...ys) + pad];
    ctx.fillStyle = "#999"; ctx.font = "11px sans-serif"; ctx.fillText("paths only: the loss surface is on its way", 6, 14);
  }
  const px = a => [(a[0] - box[0]) / (box[1] - box[0]) * W, (1 - (a[1] - box[2]) / (box[3] - box[2])) * H];
  lab.racers.forEach((r, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
    r.points.forEach((p, k) => { const [x, y] = px(p.ab); if (k) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.stroke(); ctx.lineWidth = 1;
  });
  const [x0, y0] = px([0, 0]);
  ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(x0, y0, 4, 0, 7); ctx.fill(); ctx.fillText("θ₀", x0 + 5, y0 - 5);
}

function drawBoundary() {
  const b = lab.extras.boundary, info = lab.info;
  if (!b || !info || !info.points) return;
  const c = $("c-boundary"), ctx = c.getContext("2d"), W = c.width, H = c.height, n = b.n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const p = b.p[i * n + j] / 255;
    ctx.fillStyle = `rgb(${Math.round(255 - 90 * p)}, ${Math.round(200 + 20 * Math.abs(p - 0.5))}, ${Math.round(165 + 90 * p)})`;
    ctx.fillRect(j * W / n, (n - 1 - i) * H / n, W / n + 1, H / n + 1);
  }
  const px = (x, y) => [(x - b.lo[0]) / (b.hi[0] - b.lo[0]) * W, (1 - (y - b.lo[1]) / (b.hi[1] - b.lo[1])) * H];
  info.points.forEach(([x, y], k) => {
    const [a, bb] = px(x, y);
    ctx.fillStyle = info.labels[k] ? "#1f4fb4" : "#d2551f";
    ctx.beginPath(); ctx.arc(a, bb, 2.5, 0, 7); ctx.fill();
  });
}

function drawAnatomy() {
  const a = lab.extras.anatomy, box = $("anatomy");
  if (!a) return;
  const [h, w] = a.shape;
  while (box.children.length < a.maps.length) {
    const c = document.createElement("canvas"); c.width = c.height = 52; box.appendChild(c);
  }
  a.maps.forEach((m, i) => {
    const c = box.children[i];
    drawSigned(c, m, h, w, 127);
    c.style.outline = a.dead[i] ? "3px solid #888" : "none";
    const k = a.pieces || 1;  // a maxout unit's pieces are side by side: one map each
    c.title = (k > 1 ? `unit ${Math.floor(i / k) + 1}, piece ${i % k + 1}` : `unit ${i + 1}`) + (a.dead[i] ? " (dead)" : "");
  });
}

function drawMistakes() {
  const ms = lab.extras.mistakes, box = $("mistakes"), info = lab.info;
  if (!ms || !info || !info.image_shape) return;
  const [h, w] = info.image_shape, name = k => (info.class_names || [])[k] || k;
  box.innerHTML = "";
  for (const m of ms) {
    const f = document.createElement("figure"), c = document.createElement("canvas");
    c.width = c.height = 56; drawGrey(c, m.pixels, h, w);
    f.appendChild(c);
    f.appendChild(document.createTextNode(`${name(m.label)} → ${name(m.pred)} (${m.top[0][1].toFixed(2)})`));
    box.appendChild(f);
  }
  if (!ms.length) box.textContent = "none in the test sample";
}

// ---------------------------------------------------------------- draw a digit
let drawing = false, predictTimer = null;
function drawCanvasClear() {
  const c = $("draw"), ctx = c.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, c.width, c.height);
  $("prediction").textContent = "–"; $("probs").textContent = "";
}

function strokeTo(e, start) {
  const c = $("draw"), r = c.getBoundingClientRect(), ctx = c.getContext("2d");
  const x = (e.clientX - r.left) * c.width / r.width, y = (e.clientY - r.top) * c.height / r.height;
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = ctx.lineJoin = "round";
  if (start) { ctx.beginPath(); ctx.moveTo(x, y); }
  ctx.lineTo(x, y); ctx.stroke();
}

function drawingImage() {
  const n = 112, off = document.createElement("canvas");
  off.width = off.height = n;
  off.getContext("2d").drawImage($("draw"), 0, 0, n, n);
  const d = off.getContext("2d").getImageData(0, 0, n, n).data, rows = [];
  for (let i = 0; i < n; i++) {
    const row = [];
    for (let j = 0; j < n; j++) row.push(d[4 * (i * n + j)]);
    rows.push(row);
  }
  return rows;
}

async function predictDrawing() {
  const t = $("target").value, body = { image: drawingImage() };
  if (t !== "") body.target = +t;
  const out = await api("/api/predict", body);
  const info = lab.info, [h, w] = info.image_shape, name = k => (info.class_names || [])[k] || k;
  $("prediction").textContent = name(out.class);
  $("probs").innerHTML = out.probabilities.map((p, k) =>
    `<div>${String(name(k)).padEnd(3)} ${"█".repeat(Math.round(p * 30)).padEnd(30)} ${p.toFixed(3)}</div>`).join("");
  drawGrey($("c-input"), out.input.map(v => v * 255), h, w);
  drawSigned($("c-igrad"), out.toward_target, h, w, 1);
  $("c-igrad").title = `−∂L/∂x for class ${name(out.target)}: red pixels brighter would make it more ${name(out.target)}`;
}

function schedulePredict() { clearTimeout(predictTimer); predictTimer = setTimeout(() => predictDrawing().catch(() => {}), 120); }

// ---------------------------------------------------------------- controls
function value(id) {
  const v = $(id).value.trim();
  if (id === "hidden") return v.split(/[\s,]+/).filter(Boolean).map(Number);
  if (id === "batch_size") return v === "full" ? "full" : Number(v);
  if (id === "eps") return v === "" ? null : Number(v);
  if (["lr", "momentum", "seed"].includes(id)) return Number(v);
  return v;
}

// The menus: every name comes from the server (GET /api/status → choices, from steepest.registry).
function options(names, chosen) {
  return names.map(x => `<option ${x === chosen ? "selected" : ""}>${x}</option>`).join("");
}

function buildMenus(ch) {
  $("activation").innerHTML = options(ch.activations);
  $("init").innerHTML = options(ch.inits);
  $("optimizer").innerHTML = options(ch.optimizers);
  $("budget").innerHTML = options(ch.budgets);
  lab.choices = ch;
}

function buildRacers(ch) {
  $("racers").innerHTML = ch.race_defaults.map((r, i) =>
    `<div class="racer"><input type="checkbox" id="r${i}-on" ${i < 2 ? "checked" : ""}>
     <select id="r${i}-opt">${options(ch.optimizers, r.optimizer)}</select>
     η <input id="r${i}-lr" value="${r.lr}" size="5"> B <input id="r${i}-b" value="${r.batch_size}" size="5"></div>`).join("");
}

function racerSpecs() {
  return lab.choices.race_defaults.map((_, i) => i).filter(i => $(`r${i}-on`).checked).map(i => {
    const b = $(`r${i}-b`).value.trim();
    return { optimizer: $(`r${i}-opt`).value, lr: Number($(`r${i}-lr`).value), batch_size: b === "full" ? "full" : Number(b) };
  });
}

function wire() {
  $("start").onclick = () => api("/api/start", {});
  $("pause").onclick = () => api("/api/pause", {});
  $("stepbtn").onclick = () => api("/api/step", {});
  $("reset").onclick = () => api("/api/reset", {});
  for (const id of ["dataset", "hidden", "activation", "init", "seed", "optimizer", "lr", "momentum", "batch_size", "eps"])
    $(id).addEventListener("change", () => api("/api/configure", { [id]: value(id) })
      .catch(() => { if (lab.status) fillControls(lab.status.config); }));  // refused: show what runs
  $("optimizer").addEventListener("change", momentumApplies);
  $("race").onclick = () => api("/api/race", { racers: racerSpecs(), budget: $("budget").value });
  $("single").onclick = () => api("/api/race", { racers: [{}], budget: "seconds", start: false });
  $("save").onclick = async () => {
    const name = $("savename").value.trim(), out = await api("/api/save", name ? { name } : {}).catch(() => null);
    if (!out) return;
    $("saved").textContent = `saved: ${out.run_dir} — try steepest evaluate ${out.run_dir}`;
  };
  $("surface").onclick = () => computeSurface(25);
  $("xaxis").onchange = () => { lab.dirty = true; };
  const c = $("draw");
  c.addEventListener("pointerdown", e => {
    drawing = true; strokeTo(e, true);
    try { c.setPointerCapture(e.pointerId); } catch (err) { /* not every pointer can be captured */ }
  });
  c.addEventListener("pointermove", e => { if (drawing) { strokeTo(e, false); schedulePredict(); } });
  c.addEventListener("pointerup", () => { drawing = false; schedulePredict(); });
  $("clear").onclick = drawCanvasClear;
  $("target").onchange = schedulePredict;
  const fx = { fx: $("fx"), lr: $("fx-lr"), mu: $("fx-mu"), lrv: $("fx-lr-v"), muv: $("fx-mu-v"), note: $("fx-note") };
  const ex = new Explorer($("c-fx"), fx);
  $("basins").onclick = () => ex.basins();
}

// For scripts and tests: the number of points each racer has on this page.
window.labState = () => lab.racers.map(r => r.points.length);

function connect() {
  const es = new EventSource(`/api/events?token=${encodeURIComponent(TOKEN)}`);
  es.onmessage = e => onMessage(JSON.parse(e.data));
  es.onerror = () => { $("state").textContent = "disconnected; retrying…"; };
}

async function main() {
  const status = await api("/api/status");
  buildMenus(status.choices); buildRacers(status.choices); wire(); connect();
  setInterval(() => { redraw(); if (surfaceDue()) computeSurface(21); }, 150);
}
main();
