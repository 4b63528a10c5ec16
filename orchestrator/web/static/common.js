"use strict";
/* Shared helpers of the dashboard pages: DOM building without innerHTML, number formats, polling. */
window.Journey = (function () {
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }
  function fillBody(table, rows, emptyText, columns) {
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: String(columns), text: emptyText })]));
      return;
    }
    rows.forEach((r) => body.appendChild(r));
  }
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function duration(s) {
    if (s === null || s === undefined) return "—";
    if (s < 1) return num(s * 1000, 1) + " ms";
    if (s < 120) return num(s, 1) + " s";
    if (s < 7200) return num(s / 60, 1) + " min";
    return num(s / 3600, 1) + " h";
  }
  function statusBadge(status) {
    return el("span", { class: "status status-" + status, text: status });
  }
  function poll(url, intervalMs, onData) {
    const updated = document.getElementById("updated");
    async function tick() {
      try {
        const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error("HTTP " + response.status);
        onData(await response.json());
        updated.textContent = "Live · updated " + new Date().toLocaleTimeString();
        updated.classList.remove("bad");
      } catch (err) {
        updated.textContent = "Disconnected (" + err.message + "), retrying…";
        updated.classList.add("bad");
      }
      setTimeout(tick, intervalMs);
    }
    tick();
  }
  return { el, fillBody, num, duration, statusBadge, poll };
})();
