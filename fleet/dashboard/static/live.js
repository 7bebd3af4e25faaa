// Live updates for the overview: one SSE stream (same filters as the page) re-renders rows.
(function () {
  "use strict";
  const METRICS = ["temperature", "humidity", "co2", "battery"];
  const UNITS = { "Cel": "°C", "%RH": "%", "%EL": "%", "ppm": " ppm", "Pa": " Pa", "V": " V" };
  const tbody = document.querySelector("#devices tbody");
  const liveState = document.getElementById("live-state");
  if (!tbody || !window.EventSource) return;

  // The server's own format: UK wall-clock time with its zone (GMT or BST).
  const UK_TIME = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });

  function when(iso) {
    if (!iso) return "never";
    const p = {};
    for (const part of UK_TIME.formatToParts(new Date(iso))) p[part.type] = part.value;
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + " " + p.timeZoneName;
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function row(d) {
    const tr = el("tr", null, { "data-device": d.device_id });
    const th = el("th", null, { scope: "row" });
    th.append(el("a", d.device_id, { href: "/devices/" + encodeURIComponent(d.device_id) }));
    if (d.name) th.append(el("br", null), el("span", d.name, { class: "muted" }));
    const state = el("td", null);
    state.append(el("span", d.state, { class: "badge state-" + d.state, "data-field": "state" }));
    const seen = el("td", null, { "data-field": "last_seen_at" });
    seen.append(el("time", when(d.last_seen_at), { datetime: d.last_seen_at || "" }));
    tr.append(th, state, seen);
    for (const m of METRICS) {
      const v = d.latest && d.latest[m];
      tr.append(el("td", v ? v.v.toFixed(1) + (UNITS[v.u] || " " + v.u) : "—", { "data-metric": m }));
    }
    tr.append(el("td", d.fw_version || "—", { "data-field": "fw_version" }));
    return tr;
  }

  // The server's own words for an empty page, so both say the same.
  function emptyRow() {
    const columns = document.querySelectorAll("#devices thead th").length;
    const tr = el("tr", null, { class: "empty" });
    tr.append(el("td", tbody.dataset.empty, { colspan: String(columns) }));
    return tr;
  }

  function render(snap) {
    // An empty list empties the table: devices that stopped matching must not stay listed.
    tbody.replaceChildren(...(snap.devices.length ? snap.devices.map(row) : [emptyRow()]));
    const total = document.getElementById("total");
    if (total) total.textContent = snap.total;
    for (const cell of document.querySelectorAll("[data-count]")) {
      const [code, state] = cell.dataset.count.split(":");
      cell.textContent = (snap.counts[code] && snap.counts[code][state]) || 0;
    }
    liveState.textContent = "Live · updated " + new Date().toLocaleTimeString();
  }

  const source = new EventSource("/events" + window.location.search);
  source.addEventListener("devices", (ev) => render(JSON.parse(ev.data)));
  source.onerror = () => { liveState.textContent = "Live updates interrupted; reconnecting…"; };
})();
