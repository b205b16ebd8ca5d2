// Two small canvas charts: one-minute candles and a depth curve. Drawn by hand so that the page
// needs no library and no network; both take plain numbers (prices in quote units).
"use strict";

const Charts = (() => {
  const UP = "#26a269", DOWN = "#e5484d", GRID = "#2a3140", TEXT = "#8b95a7";

  // Size the backing store to the element's CSS size times the pixel ratio: sharp on HiDPI.
  function fit(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, canvas.clientWidth), height = Math.max(1, canvas.clientHeight);
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, width, height };
  }

  function empty(ctx, width, height, text) {
    ctx.fillStyle = TEXT;
    ctx.textAlign = "center";
    ctx.fillText(text, width / 2, height / 2);
  }

  // candles: [{t (ms), open, high, low, close, volume}] oldest first.
  function candles(canvas, series, digits) {
    const { ctx, width, height } = fit(canvas);
    if (!series.length) return empty(ctx, width, height, "no trades yet: candles appear with the first");
    const axis = 64, top = 8, volumeBand = 34, bottom = 18;
    const plotW = width - axis, plotH = height - top - bottom - volumeBand;
    let low = Math.min(...series.map((c) => c.low)), high = Math.max(...series.map((c) => c.high));
    if (high === low) { high += Math.abs(high) * 0.001 || 1; low -= Math.abs(low) * 0.001 || 1; }
    const pad = (high - low) * 0.08;
    low -= pad; high += pad;
    const y = (p) => top + (high - p) / (high - low) * plotH;
    const slot = plotW / Math.max(series.length, 30);
    const body = Math.max(1, Math.min(12, slot * 0.7));
    gridLines(ctx, plotW, y, low, high, digits);
    const maxVolume = Math.max(...series.map((c) => c.volume), 1);
    series.forEach((c, i) => {
      const x = plotW - (series.length - i - 0.5) * slot;
      ctx.strokeStyle = ctx.fillStyle = c.close >= c.open ? UP : DOWN;
      ctx.beginPath(); ctx.moveTo(x, y(c.high)); ctx.lineTo(x, y(c.low)); ctx.stroke();
      const y0 = y(Math.max(c.open, c.close)), h = Math.max(1, Math.abs(y(c.open) - y(c.close)));
      ctx.fillRect(x - body / 2, y0, body, h);
      const vh = c.volume / maxVolume * (volumeBand - 4);
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x - body / 2, height - bottom - vh, body, vh);
      ctx.globalAlpha = 1;
    });
    timeLabels(ctx, series, slot, plotW, height);
  }

  function gridLines(ctx, plotW, y, low, high, digits) {
    ctx.strokeStyle = GRID; ctx.fillStyle = TEXT; ctx.textAlign = "left"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const p = low + (high - low) * i / 4, py = Math.round(y(p)) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(plotW, py); ctx.stroke();
      ctx.fillText(p.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }), plotW + 6, py + 4);
    }
  }

  function timeLabels(ctx, series, slot, plotW, height) {
    ctx.fillStyle = TEXT; ctx.textAlign = "center";
    const every = Math.max(1, Math.ceil(60 / slot));
    series.forEach((c, i) => {
      if ((series.length - 1 - i) % every) return;
      const x = plotW - (series.length - i - 0.5) * slot;
      const t = new Date(c.t);
      ctx.fillText(`${String(t.getHours()).padStart(2, "0")}:${String(t.getMinutes()).padStart(2, "0")}`, x, height - 4);
    });
  }

  // bids and asks: [[price, size], ...] best first; sizes in base units.
  function depth(canvas, bids, asks, digits) {
    const { ctx, width, height } = fit(canvas);
    if (!bids.length && !asks.length) return empty(ctx, width, height, "empty book");
    const cum = (levels) => { let s = 0; return levels.map(([p, q]) => [p, (s += q)]); };
    const b = cum(bids), a = cum(asks);
    const prices = [...b, ...a].map((l) => l[0]);
    const lo = Math.min(...prices), hi = Math.max(...prices);
    const span = hi - lo || 1, most = Math.max(...[...b, ...a].map((l) => l[1]), 1e-12);
    const base = height - 16; // a strip for the price range below the curves
    const x = (p) => 8 + (p - lo) / span * (width - 16), y = (q) => base - q / most * (base - 16);
    area(ctx, b, x, y, base, UP);
    area(ctx, a, x, y, base, DOWN);
    ctx.fillStyle = TEXT;
    ctx.textAlign = "left"; ctx.fillText("depth", 8, 10);
    const label = (p) => p.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    ctx.fillText(label(lo), 8, height - 3);
    ctx.textAlign = "right"; ctx.fillText(label(hi), width - 8, height - 3);
  }

  function area(ctx, levels, x, y, height, colour) {
    if (!levels.length) return;
    ctx.beginPath();
    ctx.moveTo(x(levels[0][0]), height);
    let last = 0;
    for (const [p, q] of levels) { ctx.lineTo(x(p), y(last)); ctx.lineTo(x(p), y(q)); last = q; }
    ctx.lineTo(x(levels[levels.length - 1][0]), height);
    ctx.closePath();
    ctx.fillStyle = colour; ctx.globalAlpha = 0.3; ctx.fill();
    ctx.globalAlpha = 1; ctx.strokeStyle = colour; ctx.stroke();
  }

  return { candles, depth };
})();
