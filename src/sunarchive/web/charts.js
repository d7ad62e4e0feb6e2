"use strict";
// Two small canvas charts, no dependencies: Charts.line (values over time) and Charts.bars.
// Text and grid take the canvas's CSS colour, so the charts follow the page's colour scheme.

const Charts = (() => {
  const PAD = { right: 10, top: 10, bottom: 24 };

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    const ink = getComputedStyle(canvas).color;
    return { ctx, w, h, ink, plot: { x: 0, y: PAD.top, w: w - PAD.right,
                                     h: h - PAD.top - PAD.bottom } };
  }

  // A round step giving about `count` gridlines up to `max`.
  function niceStep(max, count) {
    const raw = max / count;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  }

  // Horizontal gridlines with labels, the plot starting right of the widest label; returns
  // the top of the value axis.
  function valueAxis(c, max, unit) {
    const step = niceStep(max > 0 ? max : 1, 4);
    const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
    const digits = (String(+step.toPrecision(2)).split(".")[1] || "").length;
    const lines = [];
    for (let i = 0; i * step <= top + step / 2; i++) {
      lines.push({ value: i * step, label: i ? `${(i * step).toFixed(digits)} ${unit}` : "0" });
    }
    const { ctx, plot } = c;
    const width = Math.max(...lines.map((l) => ctx.measureText(l.label).width));
    plot.x = width + 8;
    plot.w = c.w - PAD.right - plot.x;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const { value, label } of lines) {
      const y = plot.y + plot.h - (value / top) * plot.h;
      ctx.globalAlpha = 0.25;
      ctx.strokeStyle = c.ink;
      ctx.beginPath();
      ctx.moveTo(plot.x, y);
      ctx.lineTo(plot.x + plot.w, y);
      ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = c.ink;
      ctx.fillText(label, plot.x - 6, y);
    }
    return top;
  }

  // A label under the axis, centred on x but kept inside the canvas.
  function xLabel(c, text, x) {
    const half = c.ctx.measureText(text).width / 2;
    c.ctx.fillStyle = c.ink;
    c.ctx.textAlign = "center";
    c.ctx.textBaseline = "top";
    c.ctx.fillText(text, Math.min(Math.max(x, half), c.w - half), c.plot.y + c.plot.h + 6);
  }

  function message(c, text) {
    c.ctx.fillStyle = c.ink;
    c.ctx.textAlign = "center";
    c.ctx.fillText(text, c.w / 2, c.h / 2);
  }

  // series: [{name, color, width, points: [[timeMs, value], ...]}]; ticks: [{x: timeMs, label}]
  function line(canvas, { series, xMin, xMax, ticks, unit }) {
    const c = setup(canvas);
    const { ctx, plot } = c;
    const max = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1])));
    const top = valueAxis(c, max, unit);
    const x = (t) => plot.x + ((t - xMin) / (xMax - xMin)) * plot.w;
    const y = (v) => plot.y + plot.h - (v / top) * plot.h;
    for (const tick of ticks) xLabel(c, tick.label, x(tick.x));
    if (!series.some((s) => s.points.length)) return message(c, "no data yet today");
    for (const s of series) {
      ctx.strokeStyle = ctx.fillStyle = s.color;
      ctx.lineWidth = s.width || 1.5;
      ctx.beginPath();
      s.points.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
      ctx.stroke();
      if (s.points.length < 30) {
        for (const [t, v] of s.points) ctx.fillRect(x(t) - 2, y(v) - 2, 4, 4);
      }
    }
  }

  // labels: one per bar; every `labelEvery`-th, counted back from the last, is written.
  function bars(canvas, { labels, values, color, highlight, unit, labelEvery, shortLabel }) {
    const c = setup(canvas);
    const { ctx, plot } = c;
    const top = valueAxis(c, Math.max(0, ...values), unit);
    const slot = plot.w / values.length;
    values.forEach((v, i) => {
      const h = (v / top) * plot.h;
      ctx.fillStyle = i === highlight ? color.highlight : color.normal;
      ctx.fillRect(plot.x + i * slot + slot * 0.15, plot.y + plot.h - h, slot * 0.7, h);
      if ((values.length - 1 - i) % labelEvery === 0) {
        xLabel(c, shortLabel(labels[i]), plot.x + (i + 0.5) * slot);
      }
    });
    if (!values.some((v) => v > 0)) message(c, "no energy stored yet");
  }

  return { line, bars };
})();
