// The room's history chart (uPlot): temperature and humidity series, limits, door-open and
// defrost periods shaded, alert markers, the projected line of a forecast (the trend to the
// limit, past now); min / max / mean / MKT below.
(function () {
  "use strict";
  const box = document.getElementById("chart");
  const labels = JSON.parse(box.dataset.labels);
  let plot = null;
  // a time (s) as a Date whose fields are the site's wall clock, whatever the browser's zone
  function zoned(ts) { return uPlot.tzDate(new Date(ts * 1e3), box.dataset.tz); }

  function join(series) {
    const xs = new Set();
    for (const s of series) for (const t of s.ts) xs.add(t);
    const x = Array.from(xs).sort(function (a, b) { return a - b; });
    const index = new Map(x.map(function (t, i) { return [t, i]; }));
    const ys = series.map(function (s) {
      const y = new Array(x.length).fill(null);
      s.ts.forEach(function (t, i) { y[index.get(t)] = s.values[i]; });
      return y;
    });
    return [x.map(function (t) { return t / 1000; }), ys];
  }

  function shade(u, spans, colour) {
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = colour;
    for (const [a, b] of spans) {
      const x0 = u.valToPos(a / 1000, "x", true), x1 = u.valToPos(b / 1000, "x", true);
      ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    }
    ctx.restore();
  }

  function markers(u, alerts) {
    const ctx = u.ctx;
    ctx.save();
    for (const a of alerts) {
      const x = u.valToPos(a.ts_ms / 1000, "x", true);
      ctx.strokeStyle = a.severity === "alarm" ? "#c62828" : "#f9a825";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    }
    ctx.restore();
  }

  function projected(u, forecasts) {
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#f9a825";
    ctx.lineWidth = 2;
    ctx.setLineDash([4, 4]);
    for (const f of forecasts) {
      ctx.beginPath();
      ctx.moveTo(u.valToPos(f.from[0] / 1000, "x", true), u.valToPos(f.from[1], "°C", true));
      ctx.lineTo(u.valToPos(f.to[0] / 1000, "x", true), u.valToPos(f.to[1], "°C", true));
      ctx.stroke();
    }
    ctx.restore();
  }

  function fmt(v) { return v === null || v === undefined ? "—" : v.toFixed(1) + " °C"; }

  // The time axis in the site's zone, 24-hour: the date on the first tick and at midnight,
  // the date alone when ticks are a day or more apart (uPlot's default is am/pm).
  function pad(n) { return String(n).padStart(2, "0"); }
  function times(u, splits, axis, space, incr) {
    let day = null;
    const out = splits.map(function (ts) {
      const d = zoned(ts);
      const date = pad(d.getMonth() + 1) + "-" + pad(d.getDate());
      const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
      if (incr >= 86400) return date;
      const first = day === null || date !== day;
      day = date;
      return first ? date + " " + hm : hm;
    });
    box.dataset.ticks = out.join("|");  // what the axis shows (drawn on the canvas)
    return out;
  }

  // Beyond the limits, the band shaded: where the room must not go.
  function bands(u, lim) {
    const ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
    ctx.save();
    ctx.fillStyle = "rgba(198,40,40,.12)";
    if (lim[1] !== null && lim[1] !== undefined) {
      const y = Math.max(top, Math.min(bottom, u.valToPos(lim[1], "°C", true)));
      ctx.fillRect(u.bbox.left, top, u.bbox.width, y - top);
    }
    if (lim[0] !== null && lim[0] !== undefined) {
      const y = Math.max(top, Math.min(bottom, u.valToPos(lim[0], "°C", true)));
      ctx.fillRect(u.bbox.left, y, u.bbox.width, bottom - y);
    }
    ctx.restore();
  }

  function draw(data) {
    const [x, ys] = join(data.series);
    const colours = ["#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037"];
    const series = [{}];
    const values = [x];
    data.series.forEach(function (s, i) {
      // the device's name and the quantity; the point too where the device has several
      const what = (labels[s.kind] || s.kind) + (s.point !== s.kind ? " " + s.point : "");
      series.push({ label: s.device + " " + what + " (" + s.unit + ")", stroke: colours[i % colours.length],
                    scale: s.kind === "humidity" ? "%" : "°C", spanGaps: true, width: 1.5 });
      values.push(ys[i]);
    });
    const lim = data.limits.temperature;
    for (const [v, name] of [[lim[0], "low"], [lim[1], "high"]]) {
      if (v === null || v === undefined) continue;
      series.push({ label: labels.limit + " " + labels[name] + " " + v + " °C", stroke: "#c62828",
                    dash: [6, 4], scale: "°C", width: 2, points: { show: false } });
      values.push(x.map(function () { return v; }));
    }
    const opts = {
      width: box.clientWidth || 900, height: 400,
      // times in the site's zone (Asia/Shanghai), whatever the browser's
      tzDate: zoned,
      // a forecast's projection runs past now: the axis runs on to where it ends
      scales: { x: { time: true, range: [data.start_ms / 1000, Math.max(data.end_ms,
        ...data.forecasts.map(function (f) { return f.to[0]; })) / 1000] } },
      axes: [{ values: times, space: 80 }, { scale: "°C", label: "°C" },
             { scale: "%", side: 1, grid: { show: false }, label: "%RH" }],
      series: series,
      hooks: { drawClear: [function (u) {
        bands(u, lim);
        shade(u, data.doors, "rgba(255,152,0,.25)");
        shade(u, data.defrost, "rgba(21,101,192,.2)");
      }], draw: [function (u) { markers(u, data.alerts); projected(u, data.forecasts); }] },
    };
    if (plot) plot.destroy();
    plot = new uPlot(opts, values, box);
    box.dataset.points = String(ys.reduce(function (n, y) { return n + y.filter(function (v) { return v !== null; }).length; }, 0));
    box.dataset.alerts = String(data.alerts.length);
    box.dataset.doors = String(data.doors.length);
    box.dataset.forecasts = String(data.forecasts.length);
    for (const k of ["min", "max", "mean", "mkt"]) document.getElementById("stat-" + k).textContent = fmt(data.stats[k]);
  }

  async function load(query) {
    const resp = await fetch(box.dataset.url + "?" + query);
    if (!resp.ok) { box.textContent = (await resp.json()).detail; return; }
    draw(await resp.json());
  }

  for (const b of document.querySelectorAll("button[data-range]")) {
    b.addEventListener("click", function () {
      document.querySelectorAll("button[data-range]").forEach(function (o) { o.classList.toggle("on", o === b); });
      load("range=" + b.dataset.range);
    });
  }
  document.getElementById("custom").addEventListener("submit", function (ev) {
    ev.preventDefault();
    const f = ev.target;
    const start = new Date(f.elements.start.value).getTime(), end = new Date(f.elements.end.value).getTime();
    load("start=" + start + "&end=" + end);
  });
  const first = new URLSearchParams(window.location.search).get("range") || "24h";
  const btn = document.querySelector('button[data-range="' + first + '"]');
  if (btn) btn.click(); else load("range=24h");
})();
