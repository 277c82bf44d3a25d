// Rendering: state in, DOM out. Cards are keyed by alarm id and rebuilt only when
// what they show changes, so a button under the officer's finger is not replaced
// by a tick of the clock or another alarm's update.

import { cardResponders, respondersLineHtml, updateDispatchTimers } from "./dispatches.js";
import { getLang, has, t } from "./i18n.js";
import {
  announcementsOf,
  dispatchesOf,
  DEVICE_TYPES,
  EDGE_AUTO,
  edgeStatus,
  foldedFeed,
  formatAge,
  newIntrusion,
  SEVERITY_RANK,
  siteKnown,
  siteSummary,
  sortedAlarms,
  topUnacknowledged,
} from "./state.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escape(value) {
  return String(value ?? "").replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

export function clockTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(getLang(), { hour12: false });
}

// Month, day and time: history and handover span days. The month by name ("Dec 7",
// "12月7日"): "12/07" reads as July 12th to half the English-reading world.
export function dateTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(getLang(), {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
}

function localized(item, fallback) {
  if (!item) return fallback;
  return (getLang() === "en" && item.name_en) || item.name || fallback;
}

export function siteName(state, siteId) {
  return localized(state.sites.get(siteId), siteId);
}

export function zoneName(state, siteId, zoneId) {
  const zone = state.sites.get(siteId)?.zones?.find((z) => z.id === zoneId);
  return zone ? localized(zone, zoneId) : t("alarm.zone_unknown", { zone: zoneId });
}

function kindLabel(kind) {
  return kind ? t(`kind.${kind}`) : "";
}

// The actor of the hub's own changes (an escalation by the timer, an auto-resolve):
// not a login to show as it is.
const SYSTEM = "system";

// A person by their display name: the officer logged in here by their own, anyone
// else by the hub's `people` (PROTOCOL 7.41), by their login when it names nobody.
export function personName(state, username) {
  if (!username) return "";
  if (username === SYSTEM) return t("person.system");
  if (state.user?.username === username && state.user.name) return state.user.name;
  return state.people?.get(username) ?? username;
}

// An alarm's resolve note: the hub's own (PROTOCOL 7.42) in the reader's language, an
// officer's as written; a code this console has no words for shows the written note.
export function alarmNote(alarm) {
  const key = `note.${alarm.note_code}`;
  if (alarm.note_code && has(key) && typeof alarm.note_window_s === "number") {
    return t(key, { seconds: alarm.note_window_s });
  }
  return alarm.note ?? "";
}

// --- status strip --------------------------------------------------------------

// siteIds: the sites to show (default: every site).
export function renderStatus(root, state, siteIds = null) {
  const sites = (siteIds ?? [...state.sites.keys()])
    .map((id) => state.sites.get(id))
    .filter(Boolean)
    .sort((a, b) => a.id.localeCompare(b.id));
  root.innerHTML = sites.map((site) => siteStatus(state, site)).join("");
}

function siteStatus(state, site) {
  const { edge, counts } = siteSummary(state, site.id);
  const health = edgeStatus(state, site.id);
  const edgeClass = `edge-${health}`;
  const edgeText = edgeLabel(state, site.id, health);
  const outbox =
    health === "online" && edge.outbox > 0 ? ` · ${t("status.outbox", { count: edge.outbox })}` : "";
  // A site the hub cannot hear has no colour to show: not blue (PROTOCOL 7.13).
  const known = siteKnown(state, site.id);
  let risk = ["blue", "yellow", "orange", "red"].includes(site.risk) ? site.risk : "blue";
  if (!known) risk = "unknown";
  const devices = DEVICE_TYPES.filter((type) => counts[type].total > 0)
    .map((type) => {
      const { online, offline, unknown, total } = counts[type];
      let health = "partial";
      if (online === total) health = "ok";
      else if (offline === 0) health = "unknown";
      else if (online === 0) health = "down";
      const unknownNote = unknown
        ? ` <small>${escape(t("status.unknown", { count: unknown }))}</small>`
        : "";
      return `<span class="devices ${health}" data-type="${type}">${escape(t(`device.${type}`))}
        <b>${escape(t("status.devices", { online, total }))}</b>${unknownNote}</span>`;
    })
    .join("");
  return `<div class="site-status ${edgeClass}${known ? "" : " site-unknown"}" data-site="${escape(site.id)}">
    <div class="site-title">
      <span class="risk risk-${risk}" title="${escape(t("status.risk"))}">${escape(t(`risk.${risk}`))}</span>
      <span class="name">${escape(localized(site, site.id))}</span>
    </div>
    <div class="site-line">
      <span class="edge ${edgeClass}"><span class="dot"></span>${escape(edgeText)}${escape(outbox)}</span>
      ${devices}
    </div>
  </div>`;
}

// An edge the hub vouches for is named by its status; one it cannot says since when
// it has not been heard.
export function edgeLabel(state, siteId, health = edgeStatus(state, siteId)) {
  const lastHeard = state.edgeLinks.get(siteId)?.last_heard;
  if (health === "unknown" && lastHeard) {
    return t("status.edge_unheard", { time: clockTime(lastHeard) });
  }
  return t(`status.edge_${health}`);
}

// --- alarm cards ---------------------------------------------------------------

export function renderAlarms(list, countEl, state, ui) {
  const alarms = sortedAlarms(state);
  countEl.textContent = alarms.length ? t("alarms.count", { count: alarms.length }) : "";
  // Not knowing is not "no open alarms": greyed, saying what it last knew.
  const notice = ui.wallNotice?.() ?? null;
  list.dataset.known = notice ? notice.kind : "yes";
  // A list of cards for a screen reader; its empty states are a status.
  list.setAttribute("role", alarms.length ? "list" : "status");
  if (alarms.length === 0 && notice) {
    list.innerHTML = `<div class="empty unknown">
      <p class="empty-title">${escape(notice.title)}</p>
      <p class="empty-hint">${escape(notice.hint)}</p></div>`;
    return;
  }
  if (alarms.length === 0) {
    list.innerHTML = `<div class="empty">
      <p class="empty-title">${escape(t("alarms.none"))}</p>
      <p class="empty-hint">${escape(t("alarms.none_hint"))}</p></div>`;
    return;
  }
  list.querySelector(".empty")?.remove();
  const selected = ui.selected(alarms);
  const top = topUnacknowledged(state);
  const keep = new Set();
  let previous = null;
  for (const alarm of alarms) {
    keep.add(alarm.id);
    const view = cardView(state, ui, alarm, alarm.id === selected?.id, alarm.id === top?.id);
    const signature = JSON.stringify(view);
    let card = list.querySelector(`article[data-alarm-id="${CSS.escape(alarm.id)}"]`);
    if (!card) {
      card = document.createElement("article");
      card.dataset.alarmId = alarm.id;
      card.setAttribute("role", "listitem");
      if (ui.isNew(alarm.id)) card.classList.add("fresh");
    }
    if (card.dataset.signature !== signature) {
      card.dataset.signature = signature;
      card.className = `alarm sev-${view.severity} state-${view.state}${view.selected ? " selected" : ""}${
        card.classList.contains("fresh") ? " fresh" : ""
      }`;
      card.innerHTML = cardHtml(view);
      card.setAttribute(
        "aria-label",
        t("alarm.summary", {
          severity: t(`severity.${view.severity}`),
          state: t(`state.${view.state}`),
          site: view.site,
          zone: view.zone,
        }),
      );
    }
    // Keep DOM order equal to sort order without touching cards already in place.
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (expected !== card) list.insertBefore(card, expected);
    previous = card;
  }
  for (const card of [...list.querySelectorAll("article[data-alarm-id]")]) {
    if (!keep.has(card.dataset.alarmId)) card.remove();
  }
  updateAges(list, ui.now());
}

function cardView(state, ui, alarm, selected, top) {
  const event = state.events.get(alarm.last_event_id);
  const canAct = ui.canAct();
  return {
    lang: getLang(),
    id: alarm.id,
    severity: alarm.severity,
    state: alarm.state,
    selected,
    top,
    site: siteName(state, alarm.site),
    zone: zoneName(state, alarm.site, alarm.zone),
    openedAt: alarm.opened_at,
    events: alarm.event_count,
    latest: event ? kindLabel(event.kind) : String(alarm.last_event_id ?? "").split(":")[0],
    latestAt: event ? clockTime(event.ts) : "",
    // The latest event's own severity colours it: a fence reporting clear is not red.
    latestSeverity: event && SEVERITY_RANK[event.severity] !== undefined ? event.severity : "info",
    // A fence of the zone reported clear: the person has left it, as far as the fence knows.
    leftAt: event?.kind === "fence.clear" ? clockTime(event.ts) : null,
    escalationWhy: escalationWhy(state, alarm.escalation_reason, alarm.escalated_by),
    ackedBy: alarm.acked_by ? personName(state, alarm.acked_by) : null,
    ackedAt: alarm.acked_at ? clockTime(alarm.acked_at) : "",
    escalation: alarm.escalation_level ?? 0,
    intrusion: intrusionView(alarm),
    snapshot: event?.snapshot ? ui.snapshotUrl(event.id) : null,
    snapshotEvent: event?.snapshot && !ui.snapshotFailed(event.id) ? event.id : null,
    // The latest announcement only: the detail has them all, the card keeps its size.
    announcements: announcementsOf(state, alarm).slice(-1).map((ann) => ({
      at: clockTime(ann.created_at),
      edgeAuto: ann.requested_by === EDGE_AUTO,
      speakers: Object.entries(ann.speakers ?? {}).sort(([a], [b]) => a.localeCompare(b)),
    })),
    // Who was called and how far each has got (PROTOCOL 7.38).
    responders: cardResponders(dispatchesOf(state, alarm.id), state.sites.get(alarm.site)),
    canAct,
    busy: ui.busyActions(alarm.id),
  };
}

// The newest intrusion, when it re-raised the alarm: it has an age of its own (7.36).
function intrusionView(alarm) {
  const intrusion = newIntrusion(alarm);
  if (!intrusion) return null;
  return {
    number: alarm.intrusion_count,
    device: intrusion.device,
    cause: intrusion.cause === "after_gone" ? "after_gone" : "quiet_gap",
    raisedAt: intrusion.raised_at,
  };
}

// The "new intrusion" line of an alarm, also in its detail ("" when none re-raised it).
export function newIntrusionLine(alarm) {
  return intrusionHtml(intrusionView(alarm));
}

function intrusionHtml(intrusion) {
  if (!intrusion) return "";
  return `<p class="new-intrusion" data-cause="${escape(intrusion.cause)}">
      <b>${escape(t("alarm.new_intrusion", { number: intrusion.number }))}</b>
      · <span translate="no">${escape(intrusion.device)}</span>
      · ${escape(t(`alarm.intrusion_cause.${intrusion.cause}`))}
      · <span class="intrusion-age" data-since="${escape(intrusion.raisedAt)}" title="${escape(
        t("alarm.intrusion_age_hint"),
      )}"></span></p>`;
}

// Why an alarm climbed, as the hub says (PROTOCOL 7.40: its `escalation_reason` and
// `escalated_by`); null at level 0, from a hub before 7.40, or for a reason this
// console has no words for.
export function escalationWhy(state, reason, by) {
  const key = `alarm.why.${reason}`;
  if (!reason || !has(key)) return null;
  return { key, who: by ? personName(state, by) : "" };
}

export function escalationWhyHtml(why) {
  if (!why) return "";
  return `<span class="escalation-why" data-reason="${escape(why.key.split(".").pop())}">${escape(
    t(why.key, { who: "\u0000" }),
  ).replace("\u0000", `<span translate="no">${escape(why.who)}</span>`)}</span>`;
}

// Every card shows its keys, so no card grows a row when it is selected; a key that
// does not act on this card (not the selected or the top one) is shown dimmed.
function button(view, action, label, key, live) {
  const busy = view.busy.includes(action);
  // Anyone may look at the details; acting needs an acting role.
  const disabled =
    action === "details" ? false : !view.canAct || busy || (action === "ack" && view.state !== "open");
  const hint = view.canAct || action === "details" ? ` <kbd${live ? "" : ' class="idle"'}>${key}</kbd>` : "";
  const title = view.canAct || action === "details" ? "" : ` title="${escape(t("action.forbidden"))}"`;
  return `<button type="button" class="action-${action}" data-action="${action}"${
    disabled ? " disabled" : ""
  }${title}>${escape(busy ? t("action.busy") : label)}${hint}</button>`;
}

function cardHtml(view) {
  const escalation = view.escalation
    ? `<span class="badge escalated">${escape(t("alarm.escalated", { level: view.escalation }))}</span>`
    : "";
  // A person's name is data, not a translatable string: marked translate="no".
  const acked = view.ackedBy
    ? `<span class="acked">${escape(t("alarm.acked_by", { who: "\u0000", time: view.ackedAt })).replace(
        "\u0000",
        `<span translate="no">${escape(view.ackedBy)}</span>`,
      )}</span>`
    : "";
  const latestTime = view.latestAt ? ` <span class="muted">${escape(view.latestAt)}</span>` : "";
  // The picture's place is kept whether or not there is one, so cards keep their size.
  let snapshot = `<div class="snapshot none"><span>${escape(t("alarm.no_snapshot"))}</span></div>`;
  if (view.snapshotEvent) {
    snapshot = view.snapshot
      ? `<button type="button" class="snapshot" data-action="snapshot" title="${escape(t("alarm.snapshot"))}">
          <img src="${escape(view.snapshot)}" alt="${escape(t("alarm.snapshot"))}" /></button>`
      : `<div class="snapshot loading" aria-hidden="true"></div>`;
  }
  // One line, most urgent first: the person gone, why it climbed, who took it.
  const status = [
    view.leftAt ? `<span class="person-left">${escape(t("alarm.person_left", { time: view.leftAt }))}</span>` : "",
    escalationWhyHtml(view.escalationWhy),
    acked,
  ].filter(Boolean);
  const announcements = view.announcements
    .map(
      (ann) => `<li class="announcement"><span class="ann-label">${escape(
        t(ann.edgeAuto ? "ann.edge_auto" : "ann.heading"),
      )} ${escape(ann.at)}</span>
        ${ann.speakers
          .map(
            ([speaker, state]) => `<span class="speaker ann-${escape(state)}" data-speaker="${escape(speaker)}"
              data-state="${escape(state)}">${escape(speaker)} · ${escape(t(`ann.state.${state}`))}</span>`,
          )
          .join("")}</li>`,
    )
    .join("");
  return `<div class="alarm-head">
      <span class="badge severity">${escape(t(`severity.${view.severity}`))}</span>
      <span class="badge state">${escape(t(`state.${view.state}`))}</span>
      ${escalation}
      <span class="age" data-opened="${escape(view.openedAt)}" title="${escape(t("alarm.age"))}"></span>
    </div>
    <div class="alarm-body">
      <div class="alarm-main">
        <p class="site-name">${escape(view.site)}</p>
        <p class="zone-name">${escape(view.zone)}</p>
        ${intrusionHtml(view.intrusion)}
        <p class="facts"><span class="latest">${escape(t("alarm.latest"))}: <b class="ev-${escape(
          view.latestSeverity,
        )}">${escape(view.latest)}</b>${latestTime}</span>
          <span class="event-count">${escape(t("alarm.events", { count: view.events }))}</span></p>
        ${status.length ? `<p class="status-line">${status.join(" · ")}</p>` : ""}
      </div>
      ${snapshot}
    </div>
    <ul class="announcements">${announcements}</ul>
    ${respondersLineHtml(view.responders)}
    <div class="alarm-actions">
      ${button(view, "ack", t("action.ack"), "A", view.top)}
      ${button(view, "announce", t("action.announce"), "N", view.selected)}
      ${button(view, "resolve", t("action.resolve"), "R", view.selected)}
      ${button(view, "details", t("action.details"), "↵", view.selected)}
    </div>`;
}

export function updateAges(root, now) {
  for (const el of root.querySelectorAll(".age[data-opened]")) {
    const opened = Date.parse(el.dataset.opened);
    // Labelled: a bare "00:49" reads as a time of day beside the wall clock.
    el.textContent = Number.isNaN(opened) ? "" : t("alarm.open_for", { age: formatAge(now - opened) });
  }
  for (const el of root.querySelectorAll(".intrusion-age[data-since]")) {
    const since = Date.parse(el.dataset.since);
    el.textContent = Number.isNaN(since) ? "" : t("alarm.intrusion_age", { age: formatAge(now - since) });
  }
  updateDispatchTimers(root, now);
}

// "×12 in 45 s", "×30 in 3 min": a run of repeats and how long it lasted (the count
// alone within a second).
export function repeatsText(count, ms) {
  const seconds = Math.round(ms / 1000);
  if (!(seconds >= 1)) return t("feed.repeats_short", { count });
  const span =
    seconds < 60 ? t("feed.span_s", { n: seconds }) : t("feed.span_min", { n: Math.round(seconds / 60) });
  return t("feed.repeats", { count, span });
}

// --- event feed ----------------------------------------------------------------

// Severity by shape as well as colour (a triangle, a diamond, a dot), named for a
// screen reader.
const SEVERITY_SHAPES = { critical: "▲", warning: "◆", info: "●" };

function severityMark(severity) {
  const known = SEVERITY_SHAPES[severity] ? severity : "info";
  return `<span class="sev-mark" role="img" aria-label="${escape(t(`severity.${known}`))}">${SEVERITY_SHAPES[known]}</span>`;
}

export function renderFeed(list, state) {
  if (state.feed.length === 0) {
    list.innerHTML = `<li class="feed-empty">${escape(t("feed.none"))}</li>`;
    return;
  }
  // A device's repeats are one row ("×12 in 1 min"), so other events stay in sight.
  list.innerHTML = foldedFeed(state)
    .map(({ event, count, first }) => {
      const repeats =
        count > 1
          ? ` <span class="feed-repeats">${escape(
              repeatsText(count, Date.parse(event.ts) - Date.parse(first)),
            )}</span>`
          : "";
      return `<li class="sev-${escape(event.severity)}" data-event-id="${escape(event.id)}" data-count="${count}">
        ${severityMark(event.severity)}<time>${escape(clockTime(event.ts))}</time>
        <span class="feed-kind">${escape(kindLabel(event.kind))}${repeats}</span>
        <span class="feed-where">${escape(siteName(state, event.site))} · ${escape(
          zoneName(state, event.site, event.zone),
        )}</span></li>`;
    })
    .join("");
}
