// The site map: a hand-drawn SVG schematic per site from the configuration's
// coordinates (PROTOCOL 7.9). No tiles, no CDN: it works on a closed network.

import { t } from "./i18n.js";
import { activeAlarmsIn, SEVERITY_RANK, siteKnown, unguardedReasons } from "./state.js";
import { clockTime, escape, siteName, zoneName } from "./view.js";

const RISKS = ["blue", "yellow", "orange", "red"];

function points(list) {
  return (list ?? []).map(([x, y]) => `${Number(x)},${Number(y)}`).join(" ");
}

export function deviceHealth(device) {
  if (device.online === true) return "online";
  if (device.online === false) return "offline";
  return "unknown";
}

function worstSeverity(alarms) {
  let worst = null;
  for (const alarm of alarms) {
    if (worst === null || SEVERITY_RANK[alarm.severity] > SEVERITY_RANK[worst]) worst = alarm.severity;
  }
  return worst;
}

function marker(device, size) {
  const [x, y] = device.position.map(Number);
  const s = size;
  if (device.type === "fence") {
    return `<rect x="${x - s}" y="${y - s}" width="${2 * s}" height="${2 * s}" rx="${s * 0.2}" />`;
  }
  if (device.type === "camera") {
    return `<polygon points="${x},${y - s * 1.2} ${x + s * 1.15},${y + s * 0.9} ${x - s * 1.15},${y + s * 0.9}" />`;
  }
  return `<circle cx="${x}" cy="${y}" r="${s}" />`;
}

function siteSvg(state, site, selection) {
  const map = site.map;
  const width = Number(map.width);
  const height = Number(map.height);
  const unit = Math.max(width, height) / 1000;
  const font = 30 * unit;
  const zones = (site.zones ?? [])
    .filter((zone) => (zone.area ?? []).length >= 3)
    .map((zone) => {
      const alarms = activeAlarmsIn(state, site.id, zone.id);
      const severity = worstSeverity(alarms);
      const unguarded = unguardedReasons(site, zone.id).length > 0;
      const selected = selection?.kind === "zone" && selection.site === site.id && selection.id === zone.id;
      // Labels sit in the zone's top left corner, clear of the devices inside it.
      const x0 = Math.min(...zone.area.map(([px]) => Number(px))) + 12 * unit;
      const y0 = Math.min(...zone.area.map(([, py]) => Number(py)));
      const classes = [
        "zone",
        severity ? `zone-alarm sev-${severity}` : "",
        unguarded ? "zone-unguarded" : "",
        selected ? "selected" : "",
      ].join(" ");
      const label = zoneName(state, site.id, zone.id);
      const note = severity
        ? t(`severity.${severity}`)
        : unguarded
          ? t("map.unguarded")
          : "";
      return `<g class="${classes.trim()}" data-map-kind="zone" data-site="${escape(site.id)}"
          data-zone="${escape(zone.id)}" tabindex="0" role="button" aria-label="${escape(label)}">
        <polygon class="zone-area" points="${points(zone.area)}" />
        ${unguarded ? `<polygon class="zone-hatch" points="${points(zone.area)}" fill="url(#hatch-${escape(site.id)})" />` : ""}
        <text class="zone-label" x="${x0}" y="${y0 + font * 1.3}" font-size="${font}">${escape(label)}</text>
        ${note ? `<text class="zone-note" x="${x0}" y="${y0 + font * 2.6}" font-size="${font * 1.25}">${escape(note)}</text>` : ""}
      </g>`;
    })
    .join("");
  const devices = [...state.devices.values()]
    .filter((device) => device.site === site.id && Array.isArray(device.position))
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((device) => {
      const selected =
        selection?.kind === "device" && selection.site === site.id && selection.id === device.id;
      const [x, y] = device.position.map(Number);
      const health = deviceHealth(device);
      return `<g class="device device-${escape(device.type)} dev-${health}${selected ? " selected" : ""}"
          data-map-kind="device" data-site="${escape(site.id)}" data-device="${escape(device.id)}"
          data-health="${health}" tabindex="0" role="button" aria-label="${escape(device.id)}">
        ${marker(device, 16 * unit)}
        <text class="device-label" x="${x}" y="${y + 46 * unit}" font-size="${font * 0.85}" translate="no">${escape(device.id)}</text>
      </g>`;
    })
    .join("");
  return `<svg class="site-map" viewBox="0 0 ${width} ${height}" preserveAspectRatio="xMidYMid meet"
      role="img" aria-label="${escape(siteName(state, site.id))}">
    <defs>
      <pattern id="hatch-${escape(site.id)}" width="${16 * unit}" height="${16 * unit}" patternUnits="userSpaceOnUse"
        patternTransform="rotate(45)">
        <rect width="${7 * unit}" height="${16 * unit}" class="hatch-stroke" />
      </pattern>
    </defs>
    <rect class="land" x="0" y="0" width="${width}" height="${height}" />
    <polygon class="water" points="${points(map.water)}" />
    <text class="water-label" x="${width * 0.5}" y="${height - 30 * unit}" font-size="${font * 1.1}">${escape(t("map.river"))}</text>
    <polyline class="bank" points="${points(map.bank)}" />
    ${zones}
    ${devices}
  </svg>`;
}

// Not hearing a site is not "no alarms" (PROTOCOL 7.13).
export function alarmsLine(open, unknown) {
  if (open) return t("map.open_alarms", { count: open });
  return t(unknown ? "map.alarms_unknown" : "map.quiet");
}

function siteCard(state, site, selection) {
  // A site the hub cannot hear has no colour to show (PROTOCOL 7.13).
  let risk = RISKS.includes(site.risk) ? site.risk : "blue";
  if (!siteKnown(state, site.id)) risk = "unknown";
  const open = activeAlarmsIn(state, site.id).length;
  const body = site.map
    ? siteSvg(state, site, selection)
    : `<p class="map-missing">${escape(t("map.no_map"))}</p>`;
  const reasons = riskReasons(site);
  return `<section class="map-card risk-border-${risk}" data-site="${escape(site.id)}">
    <h3 class="map-title">
      <span class="risk risk-${risk}">${escape(t(`risk.${risk}`))}</span>
      <span class="name">${escape(siteName(state, site.id))}</span>
      <span class="muted">${escape(alarmsLine(open, risk === "unknown"))}</span>
    </h3>
    ${reasons ? `<p class="risk-reasons">${reasons}</p>` : ""}
    ${body}
  </section>`;
}

// Why the hub gave the site its colour (its risk_reasons, PROTOCOL 7.24).
function riskReasons(site) {
  const parts = [];
  for (const reason of site.risk_reasons ?? []) {
    const [kind, detail] = String(reason).split(/:(.*)/s);
    if (kind === "alarms") parts.push(escape(t("risk_reason.alarms")));
    else if (kind === "unguarded") parts.push(escape(t("risk_reason.unguarded")));
    else if (kind === "event_rate") parts.push(escape(t("risk_reason.event_rate")));
    else if (kind === "schedule") {
      // The period's name is the site configuration's own words.
      parts.push(
        escape(t("risk_reason.schedule", { name: "\u0000" })).replace(
          "\u0000",
          `<span translate="no">${escape(detail ?? "")}</span>`,
        ),
      );
    }
  }
  return parts.length ? `${escape(t("risk_reason.heading"))}: ${parts.join(" · ")}` : "";
}

// siteIds: the sites to draw (every site of a small fleet, one of a city).
export function renderMaps(root, state, selection, siteIds) {
  const sites = siteIds.map((id) => state.sites.get(id)).filter(Boolean);
  const html = sites.length
    ? sites.map((site) => siteCard(state, site, selection)).join("")
    : `<p class="map-missing">${escape(t("map.no_sites"))}</p>`;
  // Most messages (a heartbeat, an event elsewhere) change nothing drawn here.
  if (root.drawn === html) return;
  // Keyboard focus on a zone or device survives the redraw.
  const focused = document.activeElement?.closest?.("[data-map-kind]");
  const key = focused && root.contains(focused) ? mapKey(focused) : null;
  root.drawn = html;
  root.innerHTML = html;
  if (key) {
    for (const el of root.querySelectorAll("[data-map-kind]")) {
      if (mapKey(el) === key) el.focus();
    }
  }
}

function mapKey(el) {
  return `${el.dataset.mapKind} ${el.dataset.site} ${el.dataset.zone ?? el.dataset.device}`;
}

function row(label, value, attrs = "") {
  return `<div class="fact"><dt>${escape(label)}</dt><dd${attrs}>${value}</dd></div>`;
}

// Heartbeats give a fraction (0..1) or a percentage: a percentage either way, or null.
export function batteryPercent(device) {
  if (device.battery === null || device.battery === undefined) return null;
  const value = Number(device.battery);
  if (!Number.isFinite(value)) return null;
  return Math.round(value <= 1 ? value * 100 : value);
}

export function formatBattery(device) {
  const percent = batteryPercent(device);
  return percent === null ? "—" : `${percent}%`;
}

export function formatSignal(device) {
  return device.rssi === null || device.rssi === undefined ? "—" : `${device.rssi} dBm`;
}

export function renderMapDetail(root, state, selection) {
  if (!selection) {
    root.innerHTML = `<p class="muted">${escape(t("map.pick"))}</p>${legend()}`;
    return;
  }
  const site = state.sites.get(selection.site);
  if (!site) {
    root.innerHTML = legend();
    return;
  }
  if (selection.kind === "device") {
    const device = state.devices.get(selection.id);
    if (!device) {
      root.innerHTML = legend();
      return;
    }
    const health = deviceHealth(device);
    const zones = (device.zones ?? []).map((zone) => escape(zoneName(state, site.id, zone))).join("、");
    root.innerHTML = `<h3 translate="no">${escape(device.id)}</h3>
      <dl class="facts-list">
        ${row(t("devices.type"), escape(t(`device.${device.type}`)))}
        ${row(t("devices.site"), escape(siteName(state, site.id)))}
        ${row(t("devices.zones"), zones || "—")}
        ${row(t("devices.status"), `<span class="health health-${health}">${escape(t(`health.${health}`))}</span>`)}
        ${row(t("devices.last_seen"), escape(device.last_seen ? clockTime(device.last_seen) : "—"))}
        ${row(t("devices.battery"), escape(formatBattery(device)))}
        ${row(t("devices.signal"), escape(formatSignal(device)))}
      </dl>${legend()}`;
    return;
  }
  const zone = (site.zones ?? []).find((z) => z.id === selection.id);
  if (!zone) {
    root.innerHTML = legend();
    return;
  }
  const alarms = activeAlarmsIn(state, site.id, zone.id);
  const reasons = unguardedReasons(site, zone.id);
  const devices = [...state.devices.values()]
    .filter((device) => device.site === site.id && (device.zones ?? []).includes(zone.id))
    .sort((a, b) => a.id.localeCompare(b.id));
  const alarmList = alarms.length
    ? `<ul class="zone-alarms">${alarms
        .map(
          (alarm) => `<li class="sev-${escape(alarm.severity)}">
            <span class="badge severity">${escape(t(`severity.${alarm.severity}`))}</span>
            ${escape(t(`state.${alarm.state}`))} · ${escape(clockTime(alarm.opened_at))}
            <button type="button" data-command="open-detail" data-alarm-id="${escape(alarm.id)}">${escape(
              t("detail.open"),
            )}</button></li>`,
        )
        .join("")}</ul>`
    : `<p class="muted">${escape(t("map.no_alarm"))}</p>`;
  const reasonText = reasons
    .map((reason) =>
      reason.kind === "device"
        ? t("map.reason_device", { device: reason.device })
        : t(`map.reason_${reason.kind}`),
    )
    .map((text) => `<li>${escape(text)}</li>`)
    .join("");
  root.innerHTML = `<h3>${escape(zoneName(state, site.id, zone.id))}</h3>
    <p class="muted">${escape(siteName(state, site.id))}</p>
    ${alarmList}
    ${reasons.length ? `<p class="unguarded-note">${escape(t("map.unguarded"))}</p><ul class="reasons">${reasonText}</ul>` : ""}
    <h4>${escape(t("map.devices"))}</h4>
    <ul class="zone-devices">${devices
      .map((device) => {
        const health = deviceHealth(device);
        return `<li><span class="health health-${health}">${escape(t(`health.${health}`))}</span>
          <span translate="no">${escape(device.id)}</span> · ${escape(t(`device.${device.type}`))}</li>`;
      })
      .join("")}</ul>${legend()}`;
}

function legend() {
  return `<dl class="map-legend">
    <div><dt><svg viewBox="0 0 20 20"><rect x="3" y="3" width="14" height="14" /></svg></dt><dd>${escape(t("device.fence"))}</dd></div>
    <div><dt><svg viewBox="0 0 20 20"><polygon points="10,2 18,17 2,17" /></svg></dt><dd>${escape(t("device.camera"))}</dd></div>
    <div><dt><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="7" /></svg></dt><dd>${escape(t("device.speaker"))}</dd></div>
    <div><dt><span class="swatch health-online"></span></dt><dd>${escape(t("health.online"))}</dd></div>
    <div><dt><span class="swatch health-offline"></span></dt><dd>${escape(t("health.offline"))}</dd></div>
    <div><dt><span class="swatch health-unknown"></span></dt><dd>${escape(t("health.unknown"))}</dd></div>
    <div><dt><span class="swatch hatch"></span></dt><dd>${escape(t("map.unguarded"))}</dd></div>
  </dl>`;
}
