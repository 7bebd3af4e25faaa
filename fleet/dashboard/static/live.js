// Live updates for the overview: one SSE stream re-renders the table rows in place.
(function () {
  "use strict";
  const METRICS = ["temperature", "humidity", "co2", "battery"];
  const STATES = ["online", "sleeping", "late", "offline", "unknown"];
  const UNITS = { "Cel": "°C", "%RH": "%", "%EL": "%", "ppm": " ppm", "Pa": " Pa", "V": " V" };
  const tbody = document.querySelector("#devices tbody");
  const liveState = document.getElementById("live-state");
  if (!tbody || !window.EventSource) return;

  function ago(iso) {
    if (!iso) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function cell(tag, text, attrs) {
    const el = document.createElement(tag);
    el.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  }

  function row(d) {
    const tr = document.createElement("tr");
    tr.dataset.device = d.device_id;
    const th = cell("th", d.device_id, { scope: "row" });
    if (d.name) { th.append(document.createElement("br"), cell("span", d.name, { class: "muted" })); }
    tr.append(th);
    const td = document.createElement("td");
    td.append(cell("span", d.state, { class: "badge state-" + d.state, "data-field": "state" }));
    tr.append(td);
    const seen = document.createElement("td");
    seen.dataset.field = "last_seen_at";
    seen.append(cell("time", ago(d.last_seen_at), { datetime: d.last_seen_at || "" }));
    tr.append(seen);
    for (const m of METRICS) {
      const v = d.latest && d.latest[m];
      tr.append(cell("td", v ? v.v.toFixed(1) + (UNITS[v.u] || " " + v.u) : "—", { "data-metric": m }));
    }
    tr.append(cell("td", d.fw_version || "—", { "data-field": "fw_version" }));
    return tr;
  }

  function render(devices) {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    tbody.replaceChildren(...devices.map(row));
    for (const d of devices) counts[d.state] = (counts[d.state] || 0) + 1;
    for (const s of STATES) {
      const el = document.querySelector('[data-count="' + s + '"]');
      if (el) el.textContent = counts[s];
    }
    const cap = document.querySelector("#devices caption");
    if (cap) cap.textContent = "Devices (" + devices.length + ")";
    liveState.textContent = "Live · updated " + new Date().toLocaleTimeString();
  }

  const source = new EventSource("/events");
  source.addEventListener("devices", (ev) => render(JSON.parse(ev.data)));
  source.onerror = () => { liveState.textContent = "Live updates interrupted; reconnecting…"; };
  setInterval(() => {
    for (const t of tbody.querySelectorAll("time[datetime]")) t.textContent = ago(t.getAttribute("datetime"));
  }, 5000);
})();
