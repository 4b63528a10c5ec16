"use strict";
/* KPI page: polls /api/kpis every 5 s and draws, per rule, a table of its groups and an SVG chart of the
   conversion rate per group (bar, 95 % interval whiskers, dashed holdout line). Redraws only on change. */
(function () {
  const J = window.Journey;
  const el = J.el;
  const SVG = "http://www.w3.org/2000/svg";
  const pct = (v) => (v === null || v === undefined ? "—" : J.num(v * 100, 1) + " %");
  const pts = (v) => (v === null || v === undefined ? "—" : (v > 0 ? "+" : "") + J.num(v * 100, 1) + " pt");
  let shown = null;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, String(v)));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function stats(row) {
    return row.stats || { ci_low: null, ci_high: null, p_value: null };
  }

  function interval(row) {
    const s = stats(row);
    return s.ci_low === null ? "" : " (" + J.num(s.ci_low * 100, 1) + "–" + J.num(s.ci_high * 100, 1) + ")";
  }

  function pValue(row) {
    const p = stats(row).p_value;
    if (p === null) return row.group === "holdout" ? "baseline" : "—";
    return Number(p).toPrecision(2) + (p < 0.05 ? " *" : "");
  }

  function table(rule, rows) {
    const head = ["Group", "Actions", "Conversions", "Rate (95 % CI)", "Uplift", "p-value"];
    const wrap = el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": rule + " groups" }, [
      el("table", { class: "kpi-table", "data-rule": rule }, [
        el("thead", {}, [el("tr", {}, head.map((h, i) => el("th", { scope: "col", class: i ? "num" : null, text: h })))]),
        el("tbody", {}, rows.map((r) => el("tr", {}, [
          el("td", { text: r.group }),
          el("td", { class: "num", text: J.num(r.actions) }),
          el("td", { class: "num", text: r.conversions === null ? "no goal" : J.num(r.conversions) }),
          el("td", { class: "num", text: pct(r.rate) + interval(r) }),
          el("td", { class: "num", text: r.group === "holdout" ? "baseline" : pts(r.uplift) }),
          el("td", { class: "num", text: pValue(r) }),
        ]))),
      ]),
    ]);
    const hasGoal = rows.some((r) => r.conversions !== null);
    const note = hasGoal ? "* significant at 5 % (two-proportion z-test against the holdout)." :
      "No goal: this rule's actions are counted, not converted.";
    return el("div", {}, [wrap, el("p", { class: "note", text: note })]);
  }

  function scale(highest) {
    const step = highest <= 0.2 ? 0.05 : highest <= 0.5 ? 0.1 : 0.2;
    return { step: step, max: Math.min(1, Math.max(step, Math.ceil(highest / step - 1e-9) * step)) };
  }

  function chart(rule, rows) {
    const W = 460, H = 250, left = 46, right = 12, top = 34, bottom = 30;
    const plotW = W - left - right, plotH = H - top - bottom;
    const axis = scale(Math.max(...rows.map((r) => Math.max(r.rate || 0, stats(r).ci_high || 0))));
    const y = (v) => top + plotH - (v / axis.max) * plotH;
    const holdout = rows.find((r) => r.group === "holdout");
    const summary = rows.map((r) => r.group + " " + pct(r.rate) + interval(r)).join(", ");
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
      "aria-label": "Conversion rate per group of " + rule + ", with 95 % intervals: " + summary });
    for (let v = 0; v <= axis.max + 1e-9; v += axis.step) {
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), stroke: "#dde1e8" }));
      root.appendChild(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11,
        fill: "#5b6576" }, Math.round(v * 100) + " %"));
    }
    const slot = plotW / rows.length, barW = Math.min(50, slot * 0.4);
    rows.forEach((r, i) => {
      const cx = left + slot * (i + 0.5);
      if (r.rate !== null) {
        root.appendChild(svg("rect", { x: cx - barW / 2, y: y(r.rate), width: barW, height: y(0) - y(r.rate),
          fill: r.group === "holdout" ? "#9aa3b2" : "#2457c5", rx: 3 }));
        const inside = y(0) - y(r.rate) >= 22; // label inside the bar's foot, clear of the holdout line
        root.appendChild(svg("text", { x: cx, y: inside ? y(0) - 8 : y(r.rate) - 6, "text-anchor": "middle",
          "font-size": 11, fill: inside ? "#fff" : "#1c2330" }, pct(r.rate)));
      }
      const s = stats(r);
      if (s.ci_low !== null) {
        const whisker = { stroke: "#1c2330", "stroke-width": 1.5 };
        root.appendChild(svg("line", { x1: cx, x2: cx, y1: y(s.ci_low), y2: y(s.ci_high), ...whisker }));
        [s.ci_low, s.ci_high].forEach((v) => root.appendChild(
          svg("line", { x1: cx - 8, x2: cx + 8, y1: y(v), y2: y(v), ...whisker })));
      }
      root.appendChild(svg("text", { x: cx, y: H - bottom + 18, "text-anchor": "middle", "font-size": 12,
        fill: "#1c2330" }, r.group + " (n=" + r.actions + ")"));
    });
    root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(0), y2: y(0), stroke: "#5b6576" }));
    if (holdout && holdout.rate !== null) {
      const dashed = { stroke: "#b3261e", "stroke-width": 1.5, "stroke-dasharray": "6 4" };
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(holdout.rate), y2: y(holdout.rate),
        class: "holdout-line", ...dashed }));
      root.appendChild(svg("line", { x1: W - right - 150, x2: W - right - 126, y1: 12, y2: 12, ...dashed }));
      root.appendChild(svg("text", { x: W - right, y: 16, "text-anchor": "end", "font-size": 11, fill: "#b3261e" },
        "holdout rate " + pct(holdout.rate)));
    }
    root.appendChild(svg("text", { x: left, y: 16, "font-size": 11, fill: "#5b6576" }, "rate, 95 % interval"));
    return el("div", { class: "chart" }, [root]);
  }

  function ruleSection(rule, rows) {
    const id = "rule-" + rule;
    const parts = [table(rule, rows)];
    if (rows.some((r) => r.conversions !== null)) parts.push(chart(rule, rows));
    return el("section", { "aria-labelledby": id, class: "kpi-rule", "data-rule": rule }, [
      el("h3", { id: id, text: rule }), el("div", { class: "two" }, parts),
    ]);
  }

  J.poll("/api/kpis", 5000, (body) => {
    const empty = document.getElementById("kpi-empty");
    const container = document.getElementById("kpi-rules");
    const key = JSON.stringify(body);
    if (key === shown) return;
    shown = key;
    if (!body.available) {
      empty.hidden = false;
      empty.textContent = body.error ? "KPI source unavailable: " + body.error :
        "No KPI source: this server was started without access to conversion data.";
      container.replaceChildren();
      return;
    }
    empty.hidden = true;
    const byRule = new Map();
    body.rows.forEach((r) => (byRule.get(r.rule_id) || byRule.set(r.rule_id, []).get(r.rule_id)).push(r));
    container.replaceChildren(...[...byRule].map(([rule, rows]) => ruleSection(rule, rows)));
    if (!byRule.size) container.appendChild(el("p", { class: "note", text: "No rules loaded." }));
  });
})();
