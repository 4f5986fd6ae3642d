// Momentum explorer: gradient descent and the heavy ball on 2-D functions, computed in the page.
"use strict";
const FUNCS = {
  // f = ½(x² + 50·y²): condition number 50, the ravine where momentum helps.
  ravine: { f: (x, y) => 0.5 * (x * x + 50 * y * y), g: (x, y) => [x, 50 * y],
            box: [-2, 2, -1, 1], start: [-1.8, 0.6], fmin: 0, minima: [[0, 0]] },
  // f = (x² − 1)² + 0.3·x + y²: a shallow minimum near x = +0.96 and a deep one near x = −1.04.
  well: { f: (x, y) => (x * x - 1) ** 2 + 0.3 * x + y * y, g: (x, y) => [4 * x * (x * x - 1) + 0.3, 2 * y],
          box: [-2, 2, -1.5, 1.5], start: [1.6, 1.0], fmin: -0.31, minima: [[-1.04, 0], [0.96, 0]] },
  // Rosenbrock f = (1 − x)² + 100·(y − x²)², minimum at (1, 1) at the end of a curved valley.
  rosen: { f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
           g: (x, y) => [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)],
           box: [-2, 2, -1, 3], start: [-1.5, 2.5], fmin: 0, minima: [[1, 1]] },
};

// θ ← θ + v with v ← μ·v − η·∇f(θ) (μ = 0: gradient descent). Returns the path.
function descend(F, start, lr, mu, steps) {
  let [x, y] = start, vx = 0, vy = 0;
  const path = [[x, y]];
  for (let k = 0; k < steps; k++) {
    const [gx, gy] = F.g(x, y);
    vx = mu * vx - lr * gx; vy = mu * vy - lr * gy;
    x += vx; y += vy;
    if (!isFinite(x) || !isFinite(y) || Math.abs(x) > 1e3 || Math.abs(y) > 1e3) break;
    path.push([x, y]);
  }
  return path;
}

function nearestMinimum(F, p) {
  let best = -1, bd = 0.15;
  F.minima.forEach((m, i) => { const d = Math.hypot(p[0] - m[0], p[1] - m[1]); if (d < bd) { bd = d; best = i; } });
  return best;
}

function Explorer(canvas, controls) {
  const self = this, W = canvas.width, H = canvas.height, ctx = canvas.getContext("2d");
  let name = controls.fx.value, start = FUNCS[name].start.slice(), basin = null, bg = null;
  const toPx = (F, x, y) => [(x - F.box[0]) / (F.box[1] - F.box[0]) * W, (1 - (y - F.box[2]) / (F.box[3] - F.box[2])) * H];
  const toXY = (F, px, py) => [F.box[0] + px / W * (F.box[1] - F.box[0]), F.box[2] + (1 - py / H) * (F.box[3] - F.box[2])];
  const lr = () => Math.pow(10, +controls.lr.value), mu = () => +controls.mu.value;

  function background(F) {
    const n = 60, grid = [];
    for (let i = 0; i < n; i++) {
      const row = [];
      for (let j = 0; j < n; j++) {
        const [x, y] = [F.box[0] + (j + 0.5) / n * (F.box[1] - F.box[0]), F.box[2] + (i + 0.5) / n * (F.box[3] - F.box[2])];
        row.push(F.f(x, y) - F.fmin + 1e-3);
      }
      grid.push(row);
    }
    return grid;
  }

  function path(F, p, color) {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    p.forEach(([x, y], i) => { const [a, b] = toPx(F, x, y); if (i) ctx.lineTo(a, b); else ctx.moveTo(a, b); });
    ctx.stroke(); ctx.lineWidth = 1;
  }

  self.draw = function () {
    const F = FUNCS[name];
    controls.lrv.textContent = lr().toPrecision(2); controls.muv.textContent = mu().toFixed(2);
    if (!bg) bg = background(F);
    heatmap(ctx, bg, 0, 0, W, H, true);
    if (basin) {
      const n = basin.length;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const k = basin[i][j];
        ctx.fillStyle = k < 0 ? "rgba(0,0,0,0.35)" : ["rgba(0,160,0,0.35)", "rgba(220,0,220,0.35)"][k];
        ctx.fillRect(j * W / n, (n - 1 - i) * H / n, W / n + 1, H / n + 1);
      }
    }
    const gd = descend(F, start, lr(), 0, 400), hb = descend(F, start, lr(), mu(), 400);
    path(F, gd, "#000"); path(F, hb, "#f60");
    const [sx, sy] = toPx(F, start[0], start[1]);
    ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(sx, sy, 4, 0, 7); ctx.fill();
    const end = p => { const q = p[p.length - 1]; return `f = ${F.f(q[0], q[1]).toPrecision(3)}${p.length < 401 ? " (diverged)" : ""}`; };
    controls.note.textContent = `after 400 steps — GD: ${end(gd)}; heavy ball: ${end(hb)}` + (basin ? " · " + basin.note : "");
  };

  // Which minimum each start on a 40×40 grid reaches under the heavy ball (green: the first, magenta: the second, dark: none).
  self.basins = function () {
    const F = FUNCS[name], n = 40, out = [], count = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const row = [];
      for (let j = 0; j < n; j++) {
        const s = [F.box[0] + (j + 0.5) / n * (F.box[1] - F.box[0]), F.box[2] + (i + 0.5) / n * (F.box[3] - F.box[2])];
        const p = descend(F, s, lr(), mu(), 400), k = p.length < 401 ? -1 : nearestMinimum(F, p[p.length - 1]);
        row.push(k); count[k + 1]++;
      }
      out.push(row);
    }
    const names = F.minima.length > 1 ? ["deep", "shallow"] : ["the minimum"];
    out.note = `heavy-ball basins: ${names.map((m, i) => `${Math.round(100 * count[i + 1] / (n * n))}% reach ${m}`).join(", ")}, ` +
               `${Math.round(100 * count[0] / (n * n))}% none in 400 steps`;
    basin = out; self.draw();
  };

  canvas.addEventListener("click", e => {
    const r = canvas.getBoundingClientRect();
    start = toXY(FUNCS[name], (e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height);
    self.draw();
  });
  controls.fx.addEventListener("change", () => {
    name = controls.fx.value; start = FUNCS[name].start.slice(); basin = null; bg = null;
    controls.lr.value = name === "rosen" ? -3 : -1.5; self.draw();
  });
  controls.lr.addEventListener("input", () => { basin = null; self.draw(); });
  controls.mu.addEventListener("input", () => { basin = null; self.draw(); });
  self.draw();
}
