"use strict";
/* Ops page: polls /api/dashboard every 2 s and redraws tables and uPlot charts in place. */
(function () {
  const J = window.Journey;
  const el = J.el;
  const PALETTE = ["#2457c5", "#d0632b", "#1b7f3b", "#8e44ad", "#b3261e", "#00838f", "#8a5a00", "#5b6576"];
  const charts = {};

  function chartWidth(target) {
    return Math.max(target.clientWidth - 16, 240);
  }

  function drawChart(id, seriesNames, data, yLabel) {
    const target = document.getElementById(id);
    const key = seriesNames.join("|");
    const existing = charts[id];
    if (existing && existing.key === key) {
      existing.plot.setData(data);
      return;
    }
    if (existing) existing.plot.destroy();
    target.replaceChildren();
    const opts = {
      width: chartWidth(target),
      height: 190,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}].concat(seriesNames.map((name, i) => ({
        label: name, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true,
        points: { show: false },
      }))),
    };
    charts[id] = { key: key, plot: new uPlot(opts, data, target) };
  }

  window.addEventListener("resize", () => {
    Object.entries(charts).forEach(([id, c]) => {
      c.plot.setSize({ width: chartWidth(document.getElementById(id)), height: 190 });
    });
  });

  function renderLag(doc) {
    const note = document.getElementById("lag-note");
    const table = document.getElementById("lag-table");
    const lag = doc.lag;
    if (!lag) {
      note.textContent = doc.lag_error ? "Lag unavailable: " + doc.lag_error : "Waiting for the first lag sample…";
      J.fillBody(table, [], "No lag data yet.", 8);
      return;
    }
    note.textContent = (doc.lag_error ? "Last sample failed: " + doc.lag_error + ". " : "") +
      "Status from a sliding window of samples: ok, lagging (lag growing), stalled (no progress), unknown.";
    const rows = [];
    const times = new Set();
    const perGroup = {};
    lag.groups.forEach((g) => {
      rows.push(el("tr", { class: "group-row" }, [
        el("th", { scope: "row", text: g.group }), el("td", { text: "all topics" }), el("td", { text: "—" }),
        el("td", { class: "num", text: "" }), el("td", { class: "num", text: "" }),
        el("td", { class: "num", text: J.num(g.lag) }), el("td", { class: "num", text: J.duration(g.time_lag_s) }),
        el("td", {}, [J.statusBadge(g.status)]),
      ]));
      perGroup[g.group] = {};
      g.partitions.forEach((p) => {
        rows.push(el("tr", {}, [
          el("td", { text: g.group }), el("td", { text: p.topic }), el("td", { class: "num", text: String(p.partition) }),
          el("td", { class: "num", text: p.committed === null ? "none" : J.num(p.committed) }),
          el("td", { class: "num", text: J.num(p.end) }), el("td", { class: "num", text: J.num(p.lag) }),
          el("td", { class: "num", text: J.duration(p.time_lag_s) }), el("td", {}, [J.statusBadge(p.status)]),
        ]));
        (p.history || []).forEach(([t, value]) => {
          times.add(t);
          perGroup[g.group][t] = (perGroup[g.group][t] || 0) + value;
        });
      });
    });
    J.fillBody(table, rows, "No consumer group of the app found.", 8);
    const xs = Array.from(times).sort((a, b) => a - b);
    const groups = Object.keys(perGroup);
    if (xs.length && groups.length) {
      drawChart("lag-chart", groups, [xs].concat(groups.map((g) => xs.map((t) => perGroup[g][t] ?? null))), "messages");
    }
  }

  function renderSummary(doc) {
    const lag = doc.lag;
    const statusEl = document.getElementById("groups-status");
    statusEl.replaceChildren();
    if (lag && lag.groups.length) {
      const order = { ok: 0, unknown: 1, lagging: 2, stalled: 3 };
      const worst = lag.groups.map((g) => g.status).sort((a, b) => order[b] - order[a])[0];
      statusEl.appendChild(J.statusBadge(worst));
      document.getElementById("groups-hint").textContent = lag.groups.length + " group(s), total lag " +
        J.num(lag.groups.reduce((s, g) => s + g.lag, 0));
    } else {
      statusEl.textContent = "—";
      document.getElementById("groups-hint").textContent = "no groups yet";
    }
    const now = Object.values(doc.throughput_now).reduce((s, v) => s + v, 0);
    document.getElementById("throughput-total").textContent = J.num(now, 1);
    const total = Object.values(doc.events).reduce((s, o) => s + Object.values(o).reduce((a, b) => a + b, 0), 0);
    document.getElementById("events-total").textContent = J.num(total) + " events in total";
    document.getElementById("latency-p99").textContent = J.duration(doc.latency.p99);
    document.getElementById("latency-p50").textContent = "p50 " + J.duration(doc.latency.p50) + " · " +
      J.num(doc.latency.count) + " decisions";
    const dl = doc.dead_letters;
    document.getElementById("dlq-total").textContent = J.num(Object.values(dl).reduce((s, v) => s + v, 0));
    document.getElementById("dlq-kinds").textContent =
      Object.entries(dl).map(([k, v]) => k + " " + J.num(v)).join(" · ") || "none";
    document.getElementById("pending-waits").textContent = J.num(doc.pending_waits);
    const rules = doc.rules;
    document.getElementById("rules-version").textContent = rules.versions.join(", ") || "—";
    const reload = rules.last_reload_ok === null ? "no load recorded" :
      (rules.last_reload_ok ? "last reload ok" : "LAST RELOAD FAILED (running set kept)");
    const hint = document.getElementById("rules-reload");
    hint.textContent = reload + " · " + J.num(rules.reloads.ok || 0) + " ok, " + J.num(rules.reloads.error || 0) + " refused";
    hint.classList.toggle("bad", rules.last_reload_ok === false);
  }

  function renderCharts(doc) {
    const s = doc.series;
    if (s.t.length && s.channels.length) {
      drawChart("throughput-chart", s.channels, [s.t].concat(s.channels.map((c) => s.throughput[c])), "events/s");
    }
    if (s.t.length) {
      const ms = (v) => (v === null ? null : v * 1000);
      drawChart("latency-chart", ["p50", "p99"], [s.t, s.latency_p50.map(ms), s.latency_p99.map(ms)], "ms");
    }
  }

  function renderTables(doc) {
    J.fillBody(document.getElementById("actions-table"), doc.actions.map((a) => el("tr", {}, [
      el("td", { text: a.rule }), el("td", { text: a.type }), el("td", { text: a.status }),
      el("td", { text: a.variant }), el("td", { class: "num", text: J.num(a.total) }),
    ])), "No actions yet.", 5);
    J.fillBody(document.getElementById("suppressed-table"), doc.suppressed.map((a) => el("tr", {}, [
      el("td", { text: a.rule }), el("td", { text: a.reason }), el("td", { class: "num", text: J.num(a.total) }),
    ])), "Nothing suppressed.", 3);
    const list = document.getElementById("sources");
    list.replaceChildren(...doc.sources.map((src) => el("li", { class: src.ok ? "" : "bad",
      text: src.url + (src.ok ? " — ok" : " — unreachable: " + src.error) })));
  }

  J.poll("/api/dashboard", 2000, (doc) => {
    renderSummary(doc);
    renderLag(doc);
    renderCharts(doc);
    renderTables(doc);
    document.body.dataset.live = "true";
  });
})();
