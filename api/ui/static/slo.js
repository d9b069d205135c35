// slogate: the charts of one SLO page, drawn with uPlot (vendored beside
// this file). The page gives the history API's address and span in
// <script id="params">; the figures come from GET /v1/slos/{name}/history.
// Deploys are drawn as regions and gate answers as markers, each a link.
(function () {
  'use strict';
  var params = JSON.parse(document.getElementById('params').textContent);
  var status = document.getElementById('chart-status');
  var colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];
  var shapes = {promote: '\u25B2', halt: '\u25A0', wait: '\u25CF', error: '\u25C6'};

  function seconds(t) { return Date.parse(t) / 1000; }
  function windowSeconds(w) {
    var m = /^(\d+)([smhd])$/.exec(w);
    return m ? Number(m[1]) * {s: 1, m: 60, h: 3600, d: 86400}[m[2]] : 0;
  }
  function pctOrNull(v) { return v == null ? null : v * 100; }

  // overlay draws the deploy regions and the decision markers over a chart.
  function overlay(h) {
    return function (u) {
      var over = u.over;
      over.querySelectorAll('.deploy-region, .marker').forEach(function (n) { n.remove(); });
      var min = u.scales.x.min, max = u.scales.x.max;
      h.deploys.forEach(function (d) {
        var s = Math.max(seconds(d.startedAt), min);
        var e = d.finishedAt ? Math.min(seconds(d.finishedAt), max) : max;
        if (e < min || s > max) { return; }
        var a = document.createElement('a');
        a.className = 'deploy-region status-' + d.status;
        a.href = '/ui/deploys?service=' + encodeURIComponent(d.service) + '&environment=' + encodeURIComponent(d.environment) + '#' + d.id;
        a.title = 'deploy ' + d.version + ' (' + d.environment + ') ' + d.status + ', started ' + d.startedAt;
        a.dataset.deploy = d.id;
        var left = u.valToPos(s, 'x'), right = u.valToPos(e, 'x');
        a.style.left = left + 'px';
        a.style.width = Math.max(right - left, 2) + 'px';
        var label = document.createElement('span');
        label.textContent = d.version;
        a.appendChild(label);
        over.appendChild(a);
      });
      h.decisions.forEach(function (d) {
        var x = seconds(d.evaluatedAt);
        if (x < min || x > max) { return; }
        var a = document.createElement('a');
        a.className = 'marker ' + d.decision;
        a.href = '/ui/decisions/' + encodeURIComponent(d.evaluationId);
        a.title = d.decision + ' ' + (d.version || '') + ' at ' + d.evaluatedAt + ': ' + d.reason;
        a.dataset.decision = d.decision;
        a.dataset.evaluation = d.evaluationId;
        a.textContent = shapes[d.decision] || '\u25CF';
        a.style.left = u.valToPos(x, 'x') + 'px';
        over.appendChild(a);
      });
    };
  }

  function chart(el, h, series, data, yLabel, yRange) {
    var scales = {x: {time: true, range: [seconds(h.from), seconds(h.to)]}};
    if (yRange) { scales.y = {range: yRange}; }
    var opts = {
      width: Math.max(el.clientWidth, 300),
      height: 220,
      scales: scales,
      series: [{}].concat(series.map(function (s) { s.points = {show: false}; return s; })),
      axes: [{}, {label: yLabel, size: 60}],
      hooks: {draw: [overlay(h)]},
      legend: {live: true}
    };
    return new uPlot(opts, data, el);
  }

  function draw(h) {
    var xs = h.points.map(function (p) { return seconds(p.at); });
    var charts = [];
    charts.push(chart(document.getElementById('chart-sli'), h, [
      {label: 'SLI %', stroke: colors[0], width: 2, value: function (u, v) { return v == null ? '—' : v.toFixed(3) + ' %'; }},
      {label: 'target %', stroke: '#888', dash: [6, 4], value: function (u, v) { return v == null ? '—' : v.toFixed(3) + ' %'; }}
    ], [xs, h.points.map(function (p) { return pctOrNull(p.sli); }), xs.map(function () { return h.target * 100; })], '%',
    // The target stays in view, with room below it.
    function (u, min, max) {
      var t = h.target * 100, lo = Math.min(min == null ? t : min, t - (100 - t)), hi = Math.max(max == null ? 100 : max, t);
      return [lo, Math.min(100, hi + (hi - lo) * 0.05)];
    }));
    charts.push(chart(document.getElementById('chart-budget'), h, [
      {label: 'budget left %', stroke: colors[2], width: 2, fill: 'rgba(44,160,44,0.08)', value: function (u, v) { return v == null ? '—' : v.toFixed(1) + ' %'; }}
    ], [xs, h.points.map(function (p) { return pctOrNull(p.budgetRemaining); })], '%'));
    var windows = {};
    h.points.forEach(function (p) { Object.keys(p.burnRates || {}).forEach(function (w) { windows[w] = true; }); });
    var ws = Object.keys(windows).sort(function (a, b) { return windowSeconds(a) - windowSeconds(b); });
    var burnData = [xs];
    var burnSeries = ws.map(function (w, i) {
      burnData.push(h.points.map(function (p) { var v = (p.burnRates || {})[w]; return v == null ? null : v; }));
      return {label: w, stroke: colors[i % colors.length], width: 1.5, value: function (u, v) { return v == null ? '—' : v.toFixed(2) + 'x'; }};
    });
    charts.push(chart(document.getElementById('chart-burn'), h, burnSeries, burnData, '× budget pace'));
    var failed = h.points.filter(function (p) { return p.errors && p.errors.length; }).length;
    status.textContent = h.points.length + ' points every ' + h.step + ', ' + h.deploys.length + ' deploys, ' + h.decisions.length + ' gate answers' +
      (failed ? '; ' + failed + ' points could not be measured (' + h.points.find(function (p) { return p.errors && p.errors.length; }).errors[0] + ')' : '');
    document.getElementById('charts').dataset.ready = 'true';
    window.addEventListener('resize', function () {
      charts.forEach(function (c) { c.setSize({width: Math.max(c.root.parentNode.clientWidth, 300), height: 220}); });
    });
  }

  var q = new URLSearchParams({from: params.from, to: params.to, step: params.step});
  fetch(params.history + '?' + q.toString(), {credentials: 'same-origin', headers: {Accept: 'application/json'}})
    .then(function (r) {
      if (!r.ok) { return r.json().then(function (p) { throw new Error(p.detail || r.statusText); }); }
      return r.json();
    })
    .then(draw)
    .catch(function (e) { status.textContent = 'the history could not be read: ' + e.message; status.className = 'error'; });
})();
