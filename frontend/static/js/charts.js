/* celery-live charts: draws the chart pages with uPlot (frontend/package.json; copied into
 * static/vendor/uplot by `make`) from the JSON in #chart-data, and keeps them live.
 *
 * #chart-data (stream/stats.py, chart_payload) comes with the page, rendered from the
 * database, then from the page's socket (/ws/charts/, an htmx out-of-band swap, at most
 * once a second): {step, window, now, full, points: [[t, started, ended, failed,
 * wait p50, wait p95, run p50, run p95], ...], histogram: [[low, high, count], ...]}.
 * A `full` payload replaces the buckets held; another upserts those it carries.
 *
 * Every time chart shows the last `window` seconds on the server's clock (the browser's,
 * corrected by the last payload's `now`) and slides each second even when nothing
 * happens; a bucket with no run reads 0 runs, and no percentile.
 */
(function () {
  "use strict";
  var HEIGHT = 190;
  var buckets = new Map(); // bucket start (epoch s) -> its row
  var histogram = [];
  var step = 5;
  var span = 900;
  var skew = 0; // server clock - browser clock, seconds
  var applied = null; // the #chart-data element last read
  var plots = {}; // chart name -> uPlot

  function duration(seconds) {
    if (seconds == null) return "—";
    if (seconds < 1) return +(seconds * 1000).toPrecision(3) + " ms";
    if (seconds < 120) return +seconds.toPrecision(3) + " s";
    return +(seconds / 60).toPrecision(3) + " min";
  }
  function perSecond(count) { return count / step; }
  function percent(row) { return row && row[2] ? (100 * row[3]) / row[2] : null; }

  // What each chart draws from a bucket's row (undefined: no run in that bucket).
  var CHARTS = {
    throughput: {
      unit: function (v) { return v == null ? "—" : +v.toPrecision(3) + "/s"; },
      series: [
        { label: "started", stroke: "#4f46e5", fill: "rgba(79,70,229,.08)", of: function (r) { return perSecond(r ? r[1] : 0); } },
        { label: "ended", stroke: "#15803d", of: function (r) { return perSecond(r ? r[2] : 0); } },
      ],
    },
    failures: {
      unit: function (v) { return v == null ? "—" : +v.toFixed(1) + " %"; },
      range: [0, 100],
      series: [{ label: "failed", stroke: "#b91c1c", fill: "rgba(185,28,28,.08)", of: percent }],
    },
    wait: {
      unit: duration,
      series: [
        { label: "p50", stroke: "#92400e", of: function (r) { return r ? r[4] : null; } },
        { label: "p95", stroke: "#f59e0b", dash: [6, 4], of: function (r) { return r ? r[5] : null; } },
      ],
    },
    run: {
      unit: duration,
      series: [
        { label: "p50", stroke: "#1d4ed8", of: function (r) { return r ? r[6] : null; } },
        { label: "p95", stroke: "#60a5fa", dash: [6, 4], of: function (r) { return r ? r[7] : null; } },
      ],
    },
  };

  function now() { return Date.now() / 1000 + skew; }

  // The buckets of the window, oldest first: every one, a run in it or not.
  function grid() {
    var last = Math.floor(now() / step) * step;
    var xs = [];
    for (var t = last - Math.floor(span / step) * step; t <= last; t += step) xs.push(t);
    return xs;
  }

  function timeData(name, xs) {
    var chart = CHARTS[name];
    var data = [xs];
    chart.series.forEach(function (s) {
      data.push(xs.map(function (t) { return s.of(buckets.get(t)); }));
    });
    return data;
  }

  function width(el) { return Math.max(240, el.clientWidth); }

  function makeTimePlot(el, name) {
    var chart = CHARTS[name];
    var opts = {
      width: width(el),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: function () { var t = now(); return [t - span, t]; } },
        y: { range: chart.range ? function () { return chart.range; } : function (u, min, max) { return [0, Math.max(max || 0, 1e-9) * 1.15]; } },
      },
      axes: [{}, { values: function (u, ticks) { return ticks.map(chart.unit); }, size: 64 }],
      series: [{}].concat(chart.series.map(function (s) {
        return { label: s.label, stroke: s.stroke, fill: s.fill, dash: s.dash, width: 2, spanGaps: false, value: function (u, v) { return chart.unit(v); } };
      })),
    };
    return new uPlot(opts, timeData(name, grid()), el);
  }

  function histogramData() {
    return [histogram.map(function (bin, i) { return i; }), histogram.map(function (bin) { return bin[2]; })];
  }

  function makeHistogram(el) {
    var label = function (i) { var bin = histogram[Math.round(i)]; return bin ? duration(bin[0]) : ""; };
    var opts = {
      width: width(el),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: function () { return [-0.5, Math.max(histogram.length, 1) - 0.5]; } }, y: { range: function (u, min, max) { return [0, Math.max(max || 0, 1) * 1.15]; } } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (t) { return Number.isInteger(t) ? label(t) : ""; }); }, space: 60 },
        { size: 48 },
      ],
      series: [
        { label: "run time", value: function (u, i) { var bin = histogram[i]; return bin ? duration(bin[0]) + " – " + duration(bin[1]) : "—"; } },
        { label: "runs", stroke: "#4f46e5", fill: "rgba(79,70,229,.35)", width: 1, paths: uPlot.paths.bars({ size: [0.9, Infinity] }), points: { show: false } },
      ],
    };
    return new uPlot(opts, histogramData(), el);
  }

  function draw() {
    var xs = grid();
    Object.keys(plots).forEach(function (name) {
      plots[name].setData(name === "histogram" ? histogramData() : timeData(name, xs));
    });
    // What was drawn, for people reading the page's source and for the tests.
    var started = 0;
    var filled = 0;
    buckets.forEach(function (row) { started += row[1]; filled += 1; });
    document.querySelectorAll(".chart").forEach(function (el) {
      el.setAttribute("data-buckets", String(filled));
      el.setAttribute("data-started", String(started));
    });
  }

  function apply(payload) {
    step = payload.step;
    span = payload.window;
    skew = payload.now - Date.now() / 1000;
    if (payload.full) buckets.clear();
    payload.points.forEach(function (row) {
      if (row[1] || row[2]) buckets.set(row[0], row);
      else buckets.delete(row[0]); // left the window meanwhile
    });
    var oldest = now() - span - step;
    buckets.forEach(function (row, t) { if (t < oldest) buckets.delete(t); });
    if (payload.histogram) histogram = payload.histogram;
  }

  function readData() {
    var el = document.getElementById("chart-data");
    if (!el || el === applied) return;
    applied = el;
    try { apply(JSON.parse(el.getAttribute("data-chart"))); } catch (e) { return; }
    draw();
  }

  function start() {
    if (typeof uPlot === "undefined") return;
    readData();
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      plots[name] = name === "histogram" ? makeHistogram(el) : makeTimePlot(el, name);
      if (window.ResizeObserver) {
        new ResizeObserver(function () { plots[name].setSize({ width: width(el), height: HEIGHT }); }).observe(el);
      }
    });
    draw();
    setInterval(draw, 1000);
    document.addEventListener("htmx:wsAfterMessage", readData);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
