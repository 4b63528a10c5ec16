"use strict";
/* KPI page: polls /api/kpis every 5 s; says so plainly when no KPI source is wired in. */
(function () {
  const J = window.Journey;
  const el = J.el;
  const pct = (v) => (v === null || v === undefined ? "—" : J.num(v * 100, 2) + " %");
  const pts = (v) => (v === null || v === undefined ? "—" : (v > 0 ? "+" : "") + J.num(v * 100, 2) + " pt");

  function interval(row) {
    const low = row.ci_low ?? (row.ci ? row.ci[0] : null);
    const high = row.ci_high ?? (row.ci ? row.ci[1] : null);
    return low === null || low === undefined ? "—" : pct(low) + " – " + pct(high);
  }

  J.poll("/api/kpis", 5000, (body) => {
    const empty = document.getElementById("kpi-empty");
    const table = document.getElementById("kpi-table");
    if (!body.available) {
      empty.hidden = false;
      empty.textContent = body.error ? "KPI source unavailable: " + body.error :
        "No KPI source: this server was started without access to conversion data.";
      J.fillBody(table, [], "No KPI rows.", 7);
      return;
    }
    empty.hidden = true;
    J.fillBody(table, body.rows.map((r) => el("tr", {}, [
      el("td", { text: r.rule_id }), el("td", { text: r.group }), el("td", { class: "num", text: J.num(r.actions) }),
      el("td", { class: "num", text: r.conversions === null ? "no goal" : J.num(r.conversions) }),
      el("td", { class: "num", text: pct(r.rate) }), el("td", { text: interval(r) }),
      el("td", { class: "num", text: r.group === "holdout" ? "baseline" : pts(r.uplift) }),
    ])), "No rules with actions yet.", 7);
  });
})();
