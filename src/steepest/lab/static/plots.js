// Small canvas plots for the lab: line charts with axes, heat maps, image tiles. No dependencies.
"use strict";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

function niceTicks(lo, hi, n) {
  const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(v);
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e4 || a < 1e-2) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

// series: [{label, color, pts: [[x, y], …], dash: [on, off], width, dots}]; opts: {logy, title, hline, ymin, ymax}
function linePlot(canvas, series, opts) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  const L = 52, R = 8, T = 18, B = 24;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#222";
  ctx.fillText(opts.title || "", L, 12);
  const tf = v => opts.logy ? Math.log10(Math.max(v, 1e-12)) : v;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) for (const [x, y] of s.pts) {
    if (y === null || y === undefined || !isFinite(y) || (opts.logy && y <= 0)) continue;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, tf(y)); y1 = Math.max(y1, tf(y));
  }
  if (opts.hline && opts.hline > 0) { y0 = Math.min(y0, tf(opts.hline)); y1 = Math.max(y1, tf(opts.hline)); }
  if (opts.ymin !== undefined) y0 = tf(opts.ymin);
  if (opts.ymax !== undefined) y1 = tf(opts.ymax);
  ctx.strokeStyle = "#999"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  if (!isFinite(x0)) { ctx.fillStyle = "#999"; ctx.fillText("no data yet", L + 10, T + 20); return; }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const px = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = v => T + (1 - (tf(v) - y0) / (y1 - y0)) * (H - T - B);
  ctx.fillStyle = "#555"; ctx.strokeStyle = "#eee";
  const yt = opts.logy ? niceTicks(Math.floor(y0), Math.ceil(y1), 4).filter(v => Number.isInteger(Math.round(v * 1e6) / 1e6))
                       : niceTicks(y0, y1, 4);
  for (const t of yt) {
    const v = opts.logy ? Math.pow(10, t) : t, y = py(v);
    if (y < T - 1 || y > H - B + 1) continue;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText(fmt(v), 2, y + 4);
  }
  for (const t of niceTicks(x0, x1, 5)) ctx.fillText(fmt(t), px(t) - 8, H - 8);
  if (opts.hline && opts.hline > 0) {
    ctx.strokeStyle = "#b00"; ctx.setLineDash([4, 3]); ctx.beginPath();
    ctx.moveTo(L, py(opts.hline)); ctx.lineTo(W - R, py(opts.hline)); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = "#b00"; ctx.fillText("ε", W - R - 10, py(opts.hline) - 3);
  }
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length], shown = [];
    ctx.strokeStyle = color; ctx.lineWidth = s.width || 1.5; ctx.setLineDash(s.dash || []); ctx.beginPath();
    let pen = false;
    const stride = Math.max(1, Math.ceil(s.pts.length / 1500));  // a long run: draw every stride-th point
    for (let k = 0; k < s.pts.length; k += stride) {
      const [x, y] = s.pts[k];
      if (y === null || y === undefined || !isFinite(y) || (opts.logy && y <= 0)) { pen = false; continue; }
      if (pen) ctx.lineTo(px(x), py(y)); else ctx.moveTo(px(x), py(y));
      pen = true; shown.push([px(x), py(y)]);
    }
    ctx.stroke(); ctx.lineWidth = 1; ctx.setLineDash([]);
    if (s.dots) {
      ctx.fillStyle = color;
      for (const [x, y] of shown) { ctx.beginPath(); ctx.arc(x, y, 2.5, 0, 7); ctx.fill(); }
    }
  });
}

// A grey-level image (values 0…255, row-major h×w) drawn into a canvas, scaled.
function drawGrey(canvas, pixels, h, w) {
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.max(0, Math.min(255, pixels[i]));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  blit(canvas, img, h, w);
}

// A signed map (values −1…1 or −127…127 with scale) in red (positive) and blue (negative).
function drawSigned(canvas, values, h, w, scale) {
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.max(-1, Math.min(1, values[i] / scale)), a = Math.round(255 * (1 - Math.abs(v)));
    img.data[4 * i] = v > 0 ? 255 : a; img.data[4 * i + 1] = a; img.data[4 * i + 2] = v < 0 ? 255 : a;
    img.data[4 * i + 3] = 255;
  }
  blit(canvas, img, h, w);
}

function blit(canvas, img, h, w) {
  const off = document.createElement("canvas"); off.width = w; off.height = h;
  off.getContext("2d").putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

// A value grid (rows: y from bottom to top) as banded colours: filled contour levels of log value.
function heatmap(ctx, grid, x, y, w, h, log) {
  const flat = grid.flat().filter(v => v !== null && isFinite(v)).map(v => log ? Math.log(v) : v);
  const lo = Math.min(...flat), hi = Math.max(...flat), n = grid.length, m = grid[0].length, levels = 14;
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
    const v = grid[i][j];
    if (v === null || !isFinite(v)) { ctx.fillStyle = "#fff"; }
    else {
      const t = Math.floor(((log ? Math.log(v) : v) - lo) / (hi - lo || 1) * levels) / levels;
      ctx.fillStyle = `hsl(${240 - 200 * t}, 70%, ${85 - 35 * t}%)`;
    }
    ctx.fillRect(x + j * w / m, y + (n - 1 - i) * h / n, w / m + 1, h / n + 1);
  }
  return [lo, hi];
}
