// The quieter pages: device and edge health, history (a hand-written SVG chart and
// the incident list) and the shift handover.

import { getLang, t } from "./i18n.js";
import { compareDeviceHealth, edgeHealth, edgeStatus, formatAge } from "./state.js";
import { batteryPercent, deviceHealth, formatBattery, formatSignal } from "./map.js";
import { alarmNote, clockTime, dateTime, edgeLabel, escape, personName, siteName, zoneName } from "./view.js";

// --- devices and sites -------------------------------------------------------------

// A field technician needs about a day to swap a battery: flag it in time.
const LOW_BATTERY_PERCENT = 20;
const JUST_NOW_MS = 60_000;

// view: {sites: the site ids shown, offset and size of the page of device rows}.
export function renderDevices(edgesRoot, table, countEl, state, now, view) {
  const shown = new Set(view.sites);
  const sites = [...state.sites.values()]
    .filter((site) => shown.has(site.id))
    .sort((a, b) => a.id.localeCompare(b.id));
  edgesRoot.innerHTML = sites
    .map((site) => {
      const edge = state.edges.get(site.id);
      const health = edgeStatus(state, site.id);
      const facts = edge
        ? [
            edge.version ? t("devices.edge_version", { version: edge.version }) : "",
            t("status.outbox", { count: edge.outbox ?? 0 }),
            edge.ts ? t("devices.edge_report", { time: dateTime(edge.ts) }) : "",
          ].filter(Boolean)
        : [];
      return `<div class="edge-card health-border-${health}" data-site="${escape(site.id)}">
        <span class="name">${escape(siteName(state, site.id))}</span>
        <span class="health health-${health}">${escape(edgeLabel(state, site.id, health))}</span>
        <span class="muted">${escape(facts.join(" · "))}</span></div>`;
    })
    .join("");
  const all = [...state.devices.values()]
    .filter((device) => shown.has(device.site))
    .sort(compareDeviceHealth);
  const offline = all.filter((device) => device.online === false).length;
  // "1 device", not "1 devices" (Chinese has one form for both).
  countEl.textContent = t(all.length === 1 ? "devices.count_one" : "devices.count", { total: all.length, offline });
  const devices = all.slice(view.offset, view.offset + view.size);
  const head = `<thead><tr>
    <th>${escape(t("devices.status"))}</th><th>${escape(t("devices.id"))}</th>
    <th>${escape(t("devices.type"))}</th><th>${escape(t("devices.site"))}</th>
    <th>${escape(t("devices.zones"))}</th><th>${escape(t("devices.last_seen"))}</th>
    <th class="num">${escape(t("devices.battery"))}</th><th class="num">${escape(t("devices.signal"))}</th>
  </tr></thead>`;
  const rows = devices
    .map((device) => {
      const health = deviceHealth(device);
      const seen = Date.parse(device.last_seen ?? "");
      let ago = "";
      if (!Number.isNaN(seen)) {
        ago = now - seen < JUST_NOW_MS ? t("devices.just_now") : t("devices.ago", { age: formatAge(now - seen) });
      }
      const percent = batteryPercent(device);
      const lowBattery = percent !== null && percent < LOW_BATTERY_PERCENT;
      return `<tr class="row-${health}" data-device="${escape(device.id)}" data-health="${health}">
        <td><span class="health health-${health}">${escape(t(`health.${health}`))}</span></td>
        <td translate="no">${escape(device.id)}</td>
        <td>${escape(t(`device_one.${device.type}`))}</td>
        <td>${escape(siteName(state, device.site))}</td>
        <td>${escape((device.zones ?? []).map((zone) => zoneName(state, device.site, zone)).join(t("list.separator")))}</td>
        <td>${Number.isNaN(seen) ? `<span class="muted">${escape(t("devices.never"))}</span>` : `${escape(dateTime(device.last_seen))} <span class="muted">${escape(ago)}</span>`}</td>
        <td class="num${lowBattery ? " low" : ""}">${escape(formatBattery(device))}</td>
        <td class="num">${escape(formatSignal(device))}</td></tr>`;
    })
    .join("");
  table.innerHTML = `${head}<tbody>${rows}</tbody>`;
}

// --- history -----------------------------------------------------------------------

const DAY_MS = 86_400_000;
const SERIES_COLOURS = ["#4aa8ff", "#ffb020", "#32d74b", "#c18cff", "#ff7a59", "#5fe3d0"];

// Days by name of month ("Dec 7", "12月7日": "12/07" reads both ways in English); an
// hour by its time, but midnight by its date, so a day's two "00:00" are told apart,
// and by date and time when the chart spans days.
function bucketLabel(start, interval, spansDays = false) {
  const date = new Date(start);
  const midnight = date.getHours() === 0 && date.getMinutes() === 0;
  if (interval === "day" || (midnight && !spansDays)) {
    return date.toLocaleDateString(getLang(), { month: "short", day: "numeric" });
  }
  if (spansDays) return dateTime(date);
  return date.toLocaleTimeString(getLang(), { hour: "2-digit", minute: "2-digit", hour12: false });
}

// series: [{site, total, buckets: [{start, count}]}], all over the same buckets; total
// is the hub's count for the whole period.
export function chartSvg(state, series, interval) {
  // Wide enough to fill a wall screen's row at about the height of 17rem.
  const width = 1600;
  const height = 300;
  const left = 48;
  const bottom = 36;
  const top = 14;
  const starts = [...new Set(series.flatMap((s) => s.buckets.map((b) => b.start)))].sort((a, b) => a - b);
  if (starts.length === 0) return `<p class="muted">${escape(t("history.no_data"))}</p>`;
  const totals = starts.map((start) =>
    series.reduce((sum, s) => sum + (s.buckets.find((b) => b.start === start)?.count ?? 0), 0),
  );
  const max = Math.max(1, ...totals);
  const scale = (height - top - bottom) / max;
  const slot = (width - left - 8) / starts.length;
  const barWidth = Math.max(2, slot * 0.72);
  const bars = [];
  starts.forEach((start, index) => {
    let y = height - bottom;
    series.forEach((s, si) => {
      const count = s.buckets.find((b) => b.start === start)?.count ?? 0;
      if (!count) return;
      const h = count * scale;
      y -= h;
      bars.push(`<rect class="bar" x="${(left + index * slot + (slot - barWidth) / 2).toFixed(1)}" y="${y.toFixed(1)}"
        width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}" fill="${SERIES_COLOURS[si % SERIES_COLOURS.length]}"
        data-site="${escape(s.site)}" data-count="${count}"><title>${escape(siteName(state, s.site))} · ${escape(
          bucketLabel(start, interval),
        )} · ${count}</title></rect>`);
    });
  });
  const spansDays = starts.at(-1) - starts[0] >= DAY_MS;
  // Fewer labels when each carries a date as well.
  const every = Math.ceil(starts.length / (spansDays && interval !== "day" ? 8 : 12));
  const labels = starts
    .map((start, index) =>
      index % every === 0
        ? `<text class="axis" x="${(left + index * slot + slot / 2).toFixed(1)}" y="${height - 12}">${escape(
            bucketLabel(start, interval, spansDays),
          )}</text>`
        : "",
    )
    .join("");
  const ticks = [0, Math.round(max / 2), max]
    .filter((value, index, all) => all.indexOf(value) === index)
    .map((value) => {
      const y = height - bottom - value * scale;
      return `<line class="grid" x1="${left}" x2="${width}" y1="${y}" y2="${y}" />
        <text class="axis y" x="${left - 8}" y="${y + 5}">${value}</text>`;
    })
    .join("");
  const legend = series
    .map(
      (s, si) => `<span class="legend-item"><span class="swatch series-${si % SERIES_COLOURS.length}"></span>${escape(siteName(state, s.site))} · ${escape(
        t("history.total", { count: s.total }),
      )}</span>`,
    )
    .join("");
  return `<svg class="chart-svg" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(
    t("history.chart"),
  )}">${ticks}${bars.join("")}${labels}</svg><div class="chart-legend">${legend}</div>`;
}

export function incidentsHtml(state, alarms, exportLinks) {
  if (!alarms.length) return `<tbody><tr><td class="muted">${escape(t("history.no_incidents"))}</td></tr></tbody>`;
  const head = `<thead><tr><th>${escape(t("history.opened"))}</th><th>${escape(t("devices.site"))}</th>
    <th>${escape(t("history.zone"))}</th><th>${escape(t("history.severity"))}</th>
    <th>${escape(t("history.duration"))}</th><th>${escape(t("history.outcome"))}</th>
    <th>${escape(t("history.by"))}</th><th>${escape(t("history.note"))}</th><th></th></tr></thead>`;
  const rows = alarms
    .map((alarm) => {
      const duration = Date.parse(alarm.resolved_at) - Date.parse(alarm.opened_at);
      return `<tr class="sev-${escape(alarm.severity)}" data-alarm-id="${escape(alarm.id)}">
        <td>${escape(dateTime(alarm.opened_at))}</td>
        <td>${escape(siteName(state, alarm.site))}</td>
        <td>${escape(zoneName(state, alarm.site, alarm.zone))}</td>
        <td><span class="sev-text">${escape(t(`severity.${alarm.severity}`))}</span></td>
        <td class="num">${escape(Number.isNaN(duration) ? "" : formatAge(duration))}</td>
        <td>${escape(alarm.outcome ? t(`outcome.${alarm.outcome}`) : "")}</td>
        <td translate="no">${escape(personName(state, alarm.resolved_by))}</td>
        <td class="note-cell" translate="no">${escape(alarmNote(alarm))}</td>
        <td><div class="row-actions">
          <button type="button" data-command="open-detail" data-alarm-id="${escape(alarm.id)}">${escape(t("detail.open"))}</button>
          ${exportLinks(alarm.id)}
        </div></td></tr>`;
    })
    .join("");
  return `${head}<tbody>${rows}</tbody>`;
}

// --- shift handover ----------------------------------------------------------------

// offlineDevices: the devices that report offline, as the hub listed them (GET /api/devices?online=false).
export function handoverHtml(state, summary, now, offlineDevices) {
  const tiles = [
    ["handover.total", summary.total, ""],
    ["handover.critical", summary.critical, summary.critical ? "tile-critical" : ""],
    ["handover.resolved", summary.resolved.length, ""],
    ["handover.still_open", summary.open.length, summary.open.length ? "tile-open" : "tile-ok"],
  ]
    .map(
      ([key, value, cls]) => `<div class="tile ${cls}" data-tile="${key.split(".")[1]}"><b>${value}</b><span>${escape(
        t(key),
      )}</span></div>`,
    )
    .join("");
  const outcomes = Object.entries(summary.outcomes)
    .map(([outcome, count]) => `<li>${escape(t(`outcome.${outcome}`))}: <b>${count}</b></li>`)
    .join("");
  const open = summary.open.length
    ? summary.open
        .map(
          (alarm) => `<li class="sev-${escape(alarm.severity)}" data-alarm-id="${escape(alarm.id)}">
          <span class="badge severity">${escape(t(`severity.${alarm.severity}`))}</span>
          <span class="badge state">${escape(t(`state.${alarm.state}`))}</span>
          ${escape(siteName(state, alarm.site))} · ${escape(zoneName(state, alarm.site, alarm.zone))}
          <span class="muted">${escape(t("handover.open_for", { age: formatAge(now - Date.parse(alarm.opened_at)) }))}</span>
          ${alarm.acked_by ? `<span class="muted">${escape(t("handover.acked_by"))} <span translate="no">${escape(personName(state, alarm.acked_by))}</span></span>` : ""}
          <button type="button" data-command="open-detail" data-alarm-id="${escape(alarm.id)}">${escape(t("detail.open"))}</button></li>`,
        )
        .join("")
    : `<li class="all-clear">${escape(t("handover.nothing_open"))}</li>`;
  const resolved = summary.resolved.length
    ? summary.resolved
        .map(
          (alarm) => `<li data-alarm-id="${escape(alarm.id)}"><time>${escape(clockTime(alarm.opened_at))}</time>
          <span class="sev-text sev-${escape(alarm.severity)}">${escape(t(`severity.${alarm.severity}`))}</span>
          ${escape(siteName(state, alarm.site))} · ${escape(zoneName(state, alarm.site, alarm.zone))} —
          <b class="resolved-outcome">${escape(alarm.outcome ? t(`outcome.${alarm.outcome}`) : "")}</b>
          ${alarm.resolved_by ? `<span class="resolved-by">${escape(t("handover.resolved_by", { who: "\u0000" })).replace(
            "\u0000",
            `<span translate="no">${escape(personName(state, alarm.resolved_by))}</span>`,
          )}</span>` : ""}
          ${alarmNote(alarm) ? `<span class="muted" translate="no">${escape(alarmNote(alarm))}</span>` : ""}</li>`,
        )
        .join("")
    : `<li class="muted">${escape(t("handover.none_resolved"))}</li>`;
  const offline = [...offlineDevices]
    .sort((a, b) => a.id.localeCompare(b.id));
  const edgesDown = [...state.edges.values()].filter((edge) => edge.online === false);
  const faults = [
    ...edgesDown.map(
      (edge) => `<li>${escape(siteName(state, edge.site))} · ${escape(t(`status.edge_${edgeHealth(edge)}`))}</li>`,
    ),
    ...offline.map(
      (device) => `<li><span translate="no">${escape(device.id)}</span> · ${escape(t(`device_one.${device.type}`))} · ${escape(
        siteName(state, device.site),
      )} · ${escape(t("health.offline"))}</li>`,
    ),
  ].join("");
  return `<h2 class="handover-title">${escape(
    t("handover.title", { from: dateTime(summary.from), to: dateTime(summary.to) }),
  )}</h2>
    <div class="tiles">${tiles}</div>
    <div class="handover-cols">
      <section><h3>${escape(t("handover.open_heading"))}</h3><ul class="handover-open">${open}</ul>
        <h3>${escape(t("handover.faults"))}</h3><ul class="handover-faults">${faults || `<li class="all-clear">${escape(t("handover.no_faults"))}</li>`}</ul></section>
      <section><h3>${escape(t("handover.resolved_heading"))}</h3>
        ${outcomes ? `<ul class="outcome-counts">${outcomes}</ul>` : ""}
        <ul class="handover-resolved">${resolved}</ul></section>
    </div>`;
}
