// Live updates for the overview: one SSE stream (same filters as the page) re-renders rows.
(function () {
  "use strict";
  const METRICS = ["temperature", "humidity", "co2", "battery"];
  const UNITS = { "Cel": "°C", "%RH": "%", "%EL": "%", "ppm": " ppm", "Pa": " Pa", "V": " V" };
  // Screen readers hear state changes, at most one message per ANNOUNCE_EVERY_MS, never
  // the readings that change on every update.
  const ANNOUNCE_EVERY_MS = 15000;
  const NAMED_CHANGES = 3;
  const table = document.getElementById("devices");
  const tbody = document.querySelector("#devices tbody");
  const liveState = document.getElementById("live-state");
  const updated = document.getElementById("live-updated");
  const changes = document.getElementById("live-changes");
  const toggle = document.getElementById("live-pause");
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

  // Setting a live region's text again would announce it again.
  function say(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  const pending = new Map();
  let lastAnnounced = 0;
  let timer = null;

  function announce() {
    timer = null;
    lastAnnounced = Date.now();
    const items = [...pending];
    pending.clear();
    changes.textContent = items.length > NAMED_CHANGES
      ? items.length + " devices changed state."
      : items.map(([id, state]) => id + " is now " + state + ".").join(" ");
  }

  function noteChanges(snap) {
    for (const d of snap.devices) {
      const shown = tbody.querySelector('tr[data-device="' + CSS.escape(d.device_id) + '"] [data-field="state"]');
      if (shown && shown.textContent !== d.state) pending.set(d.device_id, d.state);
    }
    if (pending.size && !timer) {
      timer = setTimeout(announce, Math.max(0, lastAnnounced + ANNOUNCE_EVERY_MS - Date.now()));
    }
  }

  // Rows that did not change stay the same elements, so a keyboard or screen reader user
  // keeps their place; focus on a row that was redrawn moves to its new link.
  function replaceRows(rows) {
    const focused = tbody.contains(document.activeElement) ? document.activeElement : null;
    const href = focused && focused.getAttribute("href");
    const kept = new Map();
    for (const tr of tbody.querySelectorAll("tr[data-device]")) kept.set(tr.dataset.device, tr);
    const wanted = rows.map((tr) => {
      const old = kept.get(tr.dataset.device);
      return old && old.isEqualNode(tr) ? old : tr;
    });
    wanted.forEach((tr, i) => {
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    while (tbody.children.length > wanted.length) tbody.lastElementChild.remove();
    if (focused && !tbody.contains(document.activeElement)) {
      const again = [...tbody.querySelectorAll("a")].find((a) => a.getAttribute("href") === href);
      if (again) again.focus();
      else {
        if (!table.hasAttribute("tabindex")) table.setAttribute("tabindex", "-1");
        table.focus();
      }
    }
  }

  function render(snap) {
    noteChanges(snap);
    // An empty list empties the table: devices that stopped matching must not stay listed.
    replaceRows(snap.devices.length ? snap.devices.map(row) : [emptyRow()]);
    const total = document.getElementById("total");
    if (total) total.textContent = snap.total;
    for (const cell of document.querySelectorAll("[data-count]")) {
      const [code, state] = cell.dataset.count.split(":");
      cell.textContent = (snap.counts[code] && snap.counts[code][state]) || 0;
    }
    say(liveState, "Live");
    updated.textContent = " · updated " + new Date().toLocaleTimeString();
  }

  let source = null;

  function connect() {
    source = new EventSource("/events" + window.location.search);
    source.addEventListener("devices", (ev) => render(JSON.parse(ev.data)));
    source.onerror = () => say(liveState, "Live updates interrupted; reconnecting…");
  }

  // Updates can be paused (WCAG 2.2.2): a table that changes while someone reads it moves
  // their place.
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    if (source) {
      source.close();
      source = null;
      say(liveState, "Live updates paused");
      toggle.textContent = "Resume live updates";
    } else {
      connect();
      say(liveState, "Reconnecting to live updates…");
      toggle.textContent = "Pause live updates";
    }
  });
  connect();
})();
