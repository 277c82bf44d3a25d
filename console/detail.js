// The alarm detail: the alarm's whole story (events, announcements per speaker,
// acks, escalations, the outcome), its actions, and the announce panel.
// Parts are redrawn only when what they show changes, so a select the officer has
// open is not replaced under the pointer by a speaker's state update.

import { DISPATCH_ENDED, dispatchClock, pickerGroups, pickerHtml, timerHtml } from "./dispatches.js";
import { getLang, has, t } from "./i18n.js";
import { announcementsOf, EDGE_AUTO, SEVERITY_RANK } from "./state.js";
import {
  alarmNote,
  clockTime,
  dateTime,
  escape,
  escalationWhy,
  escalationWhyHtml,
  newIntrusionLine,
  personName,
  repeatsText,
  siteName,
  zoneName,
} from "./view.js";

export const VOICES = ["cmn", "yue", "en"];
const KNOWN_TYPES = new Set([
  "opened",
  "event",
  "ack",
  "announcement",
  "speaker",
  "escalation",
  "intrusion",
  "suggestion",
  "resolved",
  "dispatch",
]);
const HUB_TYPES = { escalate: "escalation", resolve: "resolved", suggest: "suggestion" };

// --- the timeline ------------------------------------------------------------------

// Entries the console builds itself from the alarm, its events and its
// announcements, until the hub's timeline comes (or when it cannot be had).
export function buildTimeline(alarm, events, announcements) {
  const entries = [{ ts: alarm.opened_at, type: "opened", severity: alarm.severity }];
  const ids = new Set(alarm.event_ids ?? []);
  for (const event of events) {
    if (!ids.has(event.id)) continue;
    entries.push({
      ts: event.ts,
      type: "event",
      kind: event.kind,
      device: event.device,
      severity: event.severity,
      eventId: event.id,
      snapshot: Boolean(event.snapshot),
      track: event.attrs?.frigate_id ?? "",
    });
  }
  entries.push(...announcementEntries(announcements));
  if (alarm.acked_at) entries.push({ ts: alarm.acked_at, type: "ack", who: alarm.acked_by });
  if (alarm.resolved_at) {
    entries.push({
      ts: alarm.resolved_at,
      type: "resolved",
      who: alarm.resolved_by,
      outcome: alarm.outcome,
      note: alarm.note ?? "",
      // The hub's own note (PROTOCOL 7.42), said in the reader's language when shown.
      note_code: alarm.note_code,
      note_window_s: alarm.note_window_s,
    });
  }
  return foldRepeats(sortEntries(entries));
}

// A device's detections of one track one after the other, nothing between them, as
// one entry with their count (as the hub's timeline does, PROTOCOL 7.36), so that the
// acknowledgement and the announcements between them are not buried.
export function foldRepeats(entries) {
  const folded = [];
  for (const entry of entries) {
    const last = folded[folded.length - 1];
    if (
      entry.type === "event" &&
      last?.type === "event" &&
      last.device === entry.device &&
      last.kind === entry.kind &&
      (last.track ?? "") === (entry.track ?? "")
    ) {
      folded[folded.length - 1] = {
        ...last,
        count: (last.count ?? 1) + (entry.count ?? 1),
        lastTs: entry.lastTs ?? entry.ts,
      };
    } else {
      folded.push(entry);
    }
  }
  return folded;
}

function announcementEntries(announcements) {
  const entries = [];
  for (const ann of announcements) {
    entries.push({
      ts: ann.created_at,
      type: "announcement",
      who: ann.requested_by,
      clip: ann.clip?.id ?? "",
      annId: ann.id,
      speakers: Object.keys(ann.speakers ?? {}).sort(),
    });
    // "pending" is the hub's own bookkeeping before the edge answers: not a step.
    for (const step of (ann.history ?? []).filter((item) => item.state !== "pending")) {
      entries.push({
        ts: step.ts,
        type: "speaker",
        speaker: step.speaker,
        state: step.state,
        detail: step.detail ?? "",
        annId: ann.id,
      });
    }
  }
  return entries;
}

// Time order, except that the opening comes first: its first event happened
// (device time) a little before the hub opened the alarm.
function sortEntries(entries) {
  return entries
    .map((entry, index) => ({ entry, index, at: Date.parse(entry.ts) }))
    .sort(
      (a, b) =>
        (a.entry.type === "opened" ? 0 : 1) - (b.entry.type === "opened" ? 0 : 1) ||
        (a.at || 0) - (b.at || 0) ||
        a.index - b.index,
    )
    .map(({ entry }) => entry);
}

// The hub's GET /api/alarms/{id}/timeline (entries of {ts, type, by, data}), in the
// console's own entry shape.
export function hubTimeline(answer) {
  const list = answer?.entries;
  if (!Array.isArray(list)) return null;
  return foldRepeats(sortEntries(
    list.map((item) => {
      const data = item.data ?? {};
      const type = HUB_TYPES[item.type] ?? item.type;
      return {
        ts: item.ts,
        type,
        who: item.by ?? data.requested_by,
        kind: data.kind,
        device: data.device,
        severity: data.severity,
        eventId: type === "event" ? data.id : undefined,
        // snapshot_url: also a picture that came after its event (PROTOCOL 7.22).
        snapshot: type === "event" && Boolean(data.snapshot || data.snapshot_url),
        outcome: data.outcome,
        note: data.note ?? "",
        // A resolve's note may be the hub's own (PROTOCOL 7.42), said when shown.
        note_code: data.note_code,
        note_window_s: data.note_window_s,
        level: type === "dispatch" ? data.level : data.escalation_level,
        levelName: data.escalation_name,
        // Why it climbed (PROTOCOL 7.40), as the alarm said after the climb.
        reason: type === "escalation" ? data.escalation_reason : undefined,
        escalatedBy: type === "escalation" ? data.escalated_by : undefined,
        suggestion: data.suggestion,
        nextStep: data.next_step,
        speaker: data.speaker,
        state: type === "speaker" || type === "dispatch" ? data.state : undefined,
        responder: type === "dispatch" ? (data.responder_name ?? data.responder) : undefined,
        // A call: the channels its messages went on (PROTOCOL 7.22).
        channels: type === "dispatch" && Array.isArray(data.channels) ? data.channels : [],
        detail: type === "speaker" ? (data.detail ?? "") : "",
        annId: type === "announcement" ? data.id : data.announcement,
        clip: data.clip?.id ?? "",
        speakers: type === "announcement" ? Object.keys(data.speakers ?? {}).sort() : [],
        // Repeats the hub folded into this event entry (7.36).
        count: Number.isInteger(item.count) ? item.count : 1,
        lastTs: item.last_ts,
        track: type === "event" ? (data.attrs?.frigate_id ?? "") : undefined,
        intrusions: data.intrusion_count,
        cause: data.cause,
      };
    }),
  ));
}

// Grid-path level names the configuration ships with are translated; a site's own
// names are data and shown as written.
export function levelName(name) {
  const key = `escalation.name.${String(name ?? "").replace(/\s+/g, "_")}`;
  return has(key) ? escape(t(key)) : `<span translate="no">${escape(name ?? "")}</span>`;
}

function suggestionText(suggestion, nextStep) {
  const parts = [];
  if (suggestion) parts.push(escape(t("detail.suggest_outcome", { outcome: t(`outcome.${suggestion}`) })));
  if (nextStep) parts.push(escape(t("detail.next_step", { step: t(`next_step.${nextStep}`) })));
  return parts.join(" · ");
}

// A hub timeline keeps its announcements' speaker steps as of when it was fetched;
// live ones from the WebSocket replace them.
export function withLiveAnnouncements(entries, announcements) {
  const live = new Set(announcements.map((ann) => ann.id));
  const kept = entries.filter(
    (entry) => !((entry.type === "speaker" || entry.type === "announcement") && live.has(entry.annId)),
  );
  return sortEntries([...kept, ...announcementEntries(announcements)]);
}

function who(name, state) {
  return `<span translate="no">${escape(personName(state, name))}</span>`;
}

function entryHtml(entry, state, ui) {
  const time = `<time>${escape(clockTime(entry.ts))}</time>`;
  let text = "";
  let extra = "";
  const severity = SEVERITY_RANK[entry.severity] !== undefined ? entry.severity : "info";
  switch (entry.type) {
    case "opened":
      text = escape(t("tl.opened", { severity: t(`severity.${severity}`) }));
      break;
    case "event":
      text = `${escape(entry.kind ? t(`kind.${entry.kind}`) : t("tl.event"))} · <span translate="no">${escape(
        entry.device ?? "",
      )}</span>`;
      if (entry.count > 1) {
        const lasted = Date.parse(entry.lastTs) - Date.parse(entry.ts);
        text += ` <span class="tl-repeats" data-count="${entry.count}">${escape(
          repeatsText(entry.count, lasted),
        )}</span>`;
      }
      if (entry.snapshot && entry.eventId) {
        const url = ui.snapshotUrl(entry.eventId);
        extra = url
          ? `<button type="button" class="tl-snapshot" data-command="snapshot-event" data-event-id="${escape(
              entry.eventId,
            )}"><img src="${escape(url)}" alt="${escape(t("alarm.snapshot"))}" /></button>`
          : "";
      }
      break;
    case "ack":
      text = t("tl.ack", { who: "\u0000" });
      text = escape(text).replace("\u0000", who(entry.who, state));
      break;
    case "announcement":
      // The edge warned by itself: no person to name.
      text =
        entry.who === EDGE_AUTO
          ? escape(t("tl.edge_auto", { count: entry.speakers.length }))
          : escape(t("tl.announcement", { who: "\u0000", count: entry.speakers.length })).replace(
              "\u0000",
              who(entry.who, state),
            );
      break;
    case "speaker":
      text = `<span translate="no">${escape(entry.speaker ?? "")}</span> · ${escape(
        t(`ann.state.${entry.state}`),
      )}${entry.detail ? ` <span class="muted" translate="no">${escape(entry.detail)}</span>` : ""}`;
      break;
    case "escalation": {
      text = `${escape(t("tl.escalation", { level: entry.level ?? "?" }))}${
        entry.levelName ? ` · ${levelName(entry.levelName)}` : ""
      }`;
      const why = escalationWhyHtml(escalationWhy(state, entry.reason, entry.escalatedBy));
      if (why) text += ` · ${why}`;
      break;
    }
    case "intrusion":
      text = `${escape(t("tl.intrusion", { number: entry.intrusions ?? "?", device: "\u0000" })).replace(
        "\u0000",
        `<span translate="no">${escape(entry.device ?? "")}</span>`,
      )}${entry.cause === "after_gone" || entry.cause === "quiet_gap" ? ` · ${escape(t(`alarm.intrusion_cause.${entry.cause}`))}` : ""}`;
      break;
    case "suggestion":
      text = `${escape(t("detail.suggestion"))}: ${suggestionText(entry.suggestion, entry.nextStep)}`;
      break;
    case "resolved":
      text = escape(
        t("tl.resolved", { who: "\u0000", outcome: entry.outcome ? t(`outcome.${entry.outcome}`) : "" }),
      ).replace("\u0000", who(entry.who, state));
      if (alarmNote(entry)) extra = `<p class="tl-note" translate="no">${escape(alarmNote(entry))}</p>`;
      break;
    case "dispatch":
      // A responder's step (from their page, an officer or a timer: docs/responders.md).
      text = `<span translate="no">${escape(entry.responder ?? "")}</span> · ${escape(
        t(`dispatch.state.${entry.state}`),
      )}`;
      // Sent by an officer by hand (not called by the escalation, nor a responder's step).
      if (entry.state === "notified" && entry.level === 0 && entry.who && entry.who !== "system") {
        text += ` · ${escape(t("dispatch.sent_by", { who: "\u0000" })).replace("\u0000", who(entry.who, state))}`;
      }
      // The call itself: at which level of the grid path, and on which channels.
      if (entry.state === "notified" && entry.level > 0) {
        text += ` · ${escape(t("dispatch.level", { level: entry.level }))}`;
      }
      if (entry.state === "notified" && entry.channels?.length) {
        text += ` · <span translate="no">${escape(entry.channels.join(", "))}</span>`;
      }
      if (entry.note) extra = `<p class="tl-note" translate="no">${escape(entry.note)}</p>`;
      break;
    default:
      text = escape(t("tl.other"));
  }
  const type = KNOWN_TYPES.has(entry.type) ? entry.type : "other";
  return `<li class="tl-${type} sev-${escape(severity)}" data-type="${type}"${
    entry.state ? ` data-state="${escape(entry.state)}"` : ""
  }>${time}<span class="tl-text">${text}</span>${extra}</li>`;
}

// --- responders --------------------------------------------------------------------

// A dispatch's note: the hub's own (PROTOCOL 7.44) in the reader's language, an
// officer's or a responder's as written.
function dispatchNoteHtml(d) {
  const key = `dispatch.note.${d.note_code}`;
  if (d.note_code && has(key)) return `<span class="note">${escape(t(key))}</span>`;
  return d.note ? `<span class="note" translate="no">${escape(d.note)}</span>` : "";
}

// Why a call was not sent, as its far end said it (data, shown as it is); a withdrawn
// call's reason is the hub's own English, which its state already says in words.
function callReason(call) {
  return call.state === "withdrawn" ? "" : (call.reason ?? "");
}

// A stand-down (PROTOCOL 7.44) says so before its state; a call says only its state.
function callWhat(call) {
  return call.purpose === "stand_down" ? `${escape(t("dispatch.call.stand_down"))} ` : "";
}

// Each responder called for the alarm: level, state, the time in it against the
// site's deadline (late in words), and the officer's cancel while it runs.
function dispatchesHtml({ canAct, dispatches, site }) {
  if (dispatches.length === 0) return `<li class="muted">${escape(t("dispatch.none"))}</li>`;
  return dispatches
    .map((d) => {
      const cancel =
        DISPATCH_ENDED.has(d.state) || !canAct
          ? ""
          : `<button type="button" class="dispatch-cancel" data-detail-action="cancel-dispatch" data-dispatch-id="${escape(
              d.id,
            )}">${escape(t("dispatch.cancel"))}</button>`;
      return `<li class="dispatch" data-dispatch-id="${escape(d.id)}" data-state="${escape(d.state)}">
        <span class="who" translate="no">${escape(d.responder_name ?? d.responder)}</span>
        <span class="level">${escape(d.level ? t("dispatch.level", { level: d.level }) : t("dispatch.by_hand"))}</span>
        <span class="state">${escape(t(`dispatch.state.${d.state}`))}</span>
        ${DISPATCH_ENDED.has(d.state) ? "" : timerHtml(dispatchClock(d, site), false)}
        ${dispatchNoteHtml(d)}
        ${(d.calls ?? [])
          .map(
            (call) =>
              `<span class="call" data-state="${escape(call.state)}" translate="no" title="${escape(
                callReason(call),
              )}">${escape(call.channel)} ${callWhat(call)}${escape(t(`dispatch.call.${call.state}`))}</span>`,
          )
          .join("")}
        ${cancel}
      </li>`;
    })
    .join("");
}

// --- rendering ---------------------------------------------------------------------

function part(root, selector, signature, html) {
  const el = root.querySelector(selector);
  if (!el || el.dataset.signature === signature) return;
  el.dataset.signature = signature;
  el.innerHTML = html;
}

export function renderDetail(root, state, ui, ctx) {
  if (!ctx.alarm) {
    root.innerHTML = `<p class="muted detail-missing">${escape(ctx.error ? t("detail.not_found") : t("detail.loading"))}</p>`;
    return;
  }
  // The frame holds translated headings and the export links: rebuilt for another
  // alarm or language, its parts then fill in.
  const frame = `${ctx.alarm.id} ${getLang()}`;
  if (root.dataset.frame !== frame || !root.querySelector("#detail-head")) {
    root.dataset.frame = frame;
    root.innerHTML = `<header id="detail-head" class="detail-head"></header>
      <div class="detail-body">
        <section class="timeline-panel">
          <div class="responders-panel">
            <h2 class="section-title"><span>${escape(t("dispatch.heading"))}</span>
              <span id="detail-next-level"></span></h2>
            <ul id="detail-dispatches" class="dispatches"></ul>
            <div id="detail-send"></div>
          </div>
          <h2 class="section-title"><span>${escape(t("detail.timeline"))}</span>
            <span class="export">${ui.exportLinks(ctx.alarm.id)}</span></h2>
          <p id="detail-source" class="muted"></p>
          <ol id="detail-timeline" class="timeline"></ol>
        </section>
        <section class="announce-panel">
          <h2 class="section-title">${escape(t("announce.heading"))}</h2>
          <form id="announce-form" novalidate></form>
          <h3 class="sub-title">${escape(t("announce.live"))}</h3>
          <ul id="detail-anns" class="detail-anns"></ul>
        </section>
      </div>`;
  }
  const alarm = ctx.alarm;
  const lang = getLang();
  const canAct = ui.canAct();
  const busy = ui.busyActions(alarm.id);
  const head = {
    lang,
    alarm,
    canAct,
    busy,
    site: siteName(state, alarm.site),
    zone: zoneName(state, alarm.site, alarm.zone),
  };
  part(root, "#detail-head", JSON.stringify(head), headHtml(state, head));

  const anns = announcementsOf(state, alarm).concat(
    [...ctx.announcements.values()].filter((ann) => !state.announcements.has(ann.id)),
  );
  const liveEvents = [...state.events.values()].filter((event) => (alarm.event_ids ?? []).includes(event.id));
  let entries;
  if (ctx.timeline?.source === "hub") {
    entries = withLiveAnnouncements(ctx.timeline.entries, anns);
  } else {
    const events = new Map((ctx.timeline?.events ?? []).map((event) => [event.id, event]));
    for (const event of liveEvents) events.set(event.id, event);
    entries = buildTimeline(alarm, [...events.values()], anns);
  }
  // A picture the hub announced after this timeline was built (a late Frigate one).
  entries = entries.map((entry) =>
    entry.eventId && !entry.snapshot && state.snapshots.has(entry.eventId) ? { ...entry, snapshot: true } : entry,
  );
  ctx.entries = entries;
  const calls = {
    lang,
    canAct,
    dispatches: ctx.dispatches ?? [],
    state: alarm.state,
    level: alarm.escalation_level,
    site: state.sites.get(alarm.site) ?? null,
  };
  part(root, "#detail-dispatches", JSON.stringify(calls), dispatchesHtml(calls));
  // Sending someone by hand: officers only (the hub refuses a viewer), while it is open.
  const sent = new Set((ctx.dispatches ?? []).map((d) => d.responder));
  const picker =
    canAct && alarm.state !== "resolved" && ctx.directory
      ? { lang, groups: pickerGroups(ctx.directory, alarm.site, sent), busy: Boolean(ctx.sending) }
      : null;
  part(
    root,
    "#detail-send",
    JSON.stringify(picker),
    picker ? pickerHtml(picker.groups, picker.busy, ctx.pick) : "",
  );
  part(
    root,
    "#detail-next-level",
    JSON.stringify([lang, canAct, alarm.state]),
    alarm.state === "resolved"
      ? ""
      : `<button type="button" data-detail-action="next-level"${canAct ? "" : " disabled"}>${escape(
          t("dispatch.next_level"),
        )}</button>`,
  );
  const sourceKey = ctx.timeline ? `detail.source_${ctx.timeline.source}` : "detail.loading";
  part(root, "#detail-source", `${lang}${sourceKey}`, escape(t(sourceKey)));
  const snapshotsReady = entries.map((entry) => (entry.eventId ? ui.snapshotUrl(entry.eventId) : null));
  part(
    root,
    "#detail-timeline",
    JSON.stringify([lang, entries, snapshotsReady]),
    entries.map((entry) => entryHtml(entry, state, ui)).join(""),
  );

  const speakers = siteSpeakers(state, alarm.site);
  const form = {
    lang,
    id: alarm.id,
    canAct,
    busy: busy.includes("announce"),
    clips: ctx.clips,
    clipId: ctx.clipId,
    site: alarm.site,
    targets: [...ctx.targets].sort(),
    speakers: speakers.map((s) => [s.id, s.online, (s.zones ?? []).includes(alarm.zone)]),
    tts: ui.ttsSupported(),
    text: ctx.text,
    voice: ctx.voice,
  };
  // The text box keeps focus and caret when the form is drawn again under it.
  const typing = document.activeElement?.id === "announce-text";
  form.text = ctx.text;
  part(root, "#announce-form", JSON.stringify({ ...form, text: null }), formHtml(state, form));
  if (typing && document.activeElement?.id !== "announce-text") {
    const box = root.querySelector("#announce-text");
    box?.focus();
    box?.setSelectionRange(box.value.length, box.value.length);
  }
  part(root, "#detail-anns", JSON.stringify([lang, anns, ctx.clips.length]), annsHtml(state, anns, ctx.clips));
}

export function siteSpeakers(state, siteId) {
  return [...state.devices.values()]
    .filter((device) => device.site === siteId && device.type === "speaker")
    .sort((a, b) => a.id.localeCompare(b.id));
}

// The zone's speakers, or every speaker of the site when none covers the zone
// (the hub's own default for an alarm).
export function defaultTargets(state, alarm) {
  const speakers = siteSpeakers(state, alarm.site);
  const covering = speakers.filter((s) => (s.zones ?? []).includes(alarm.zone));
  return new Set((covering.length ? covering : speakers).map((s) => s.id));
}

function actionButton(view, action, label, key, enabled) {
  const busy = view.busy.includes(action);
  const disabled = !view.canAct || busy || !enabled;
  return `<button type="button" class="action-${action}" data-detail-action="${action}"${
    disabled ? " disabled" : ""
  }>${escape(busy ? t("action.busy") : label)} <kbd>${key}</kbd></button>`;
}

function headHtml(state, view) {
  const { alarm } = view;
  const active = alarm.state !== "resolved";
  const level = alarm.escalation_level ?? 0;
  const why = escalationWhyHtml(escalationWhy(state, alarm.escalation_reason, alarm.escalated_by));
  const acked = alarm.acked_by
    ? `<p class="acked">${escape(t("alarm.acked_by", { who: "\u0000", time: clockTime(alarm.acked_at) })).replace(
        "\u0000",
        who(alarm.acked_by, state),
      )}</p>`
    : "";
  const resolved = alarm.state === "resolved"
    ? `<p class="acked">${escape(
        t("tl.resolved", { who: "\u0000", outcome: alarm.outcome ? t(`outcome.${alarm.outcome}`) : "" }),
      ).replace("\u0000", who(alarm.resolved_by, state))} · ${escape(dateTime(alarm.resolved_at))}</p>`
    : "";
  const suggestion =
    active && (alarm.suggestion || alarm.next_step)
      ? `<p class="suggestion">${escape(t("detail.suggestion"))}: ${suggestionText(
          alarm.suggestion,
          alarm.next_step,
        )}</p>`
      : "";
  const nextLevel =
    alarm.state === "open" && alarm.escalate_at
      ? `<span class="muted next-escalation">${escape(
          t("detail.escalate_at", { time: clockTime(alarm.escalate_at) }),
        )}</span>`
      : "";
  return `<div class="detail-title sev-${escape(alarm.severity)} state-${escape(alarm.state)}">
      <button type="button" class="back" data-command="detail-back">← ${escape(t("detail.back"))} <kbd>Esc</kbd></button>
      <span class="badge severity">${escape(t(`severity.${alarm.severity}`))}</span>
      <span class="badge state">${escape(t(`state.${alarm.state}`))}</span>
      <span class="badge escalation level-${level ? "up" : "none"}">${escape(
        level ? t("alarm.escalated", { level }) : t("detail.not_escalated"),
      )}${level && alarm.escalation_name ? ` · ${levelName(alarm.escalation_name)}` : ""}</span>
      ${nextLevel}
      ${active ? `<span class="age" data-opened="${escape(alarm.opened_at)}" title="${escape(t("alarm.age"))}"></span>` : ""}
    </div>
    <div class="detail-where">
      <p class="site-name">${escape(view.site)} · <span class="zone-name">${escape(view.zone)}</span></p>
      <p class="facts">${escape(t("detail.opened_at", { time: dateTime(alarm.opened_at) }))}
        · ${escape(t("alarm.events", { count: alarm.event_count }))}</p>
      ${active ? newIntrusionLine(alarm) : ""}
      ${why ? `<p class="escalation-reason">${why}</p>` : ""}
      ${acked}${resolved}${suggestion}
    </div>
    <div class="alarm-actions">
      ${actionButton(view, "ack", t("action.ack"), "A", alarm.state === "open")}
      ${actionButton(view, "resolve", t("action.resolve"), "R", active)}
    </div>`;
}

function formHtml(state, view) {
  const disabled = view.canAct ? "" : " disabled";
  const speakers = view.speakers.length
    ? view.speakers
        .map(([id, online, inZone]) => {
          const health = online === true ? "online" : online === false ? "offline" : "unknown";
          return `<label class="target">
            <input type="checkbox" name="target" value="${escape(id)}"${view.targets.includes(id) ? " checked" : ""}${disabled} />
            <span translate="no">${escape(id)}</span>
            <span class="health health-${health}">${escape(t(`health.${health}`))}</span>
            ${inZone ? `<span class="muted">${escape(t("announce.in_zone"))}</span>` : ""}</label>`;
        })
        .join("")
    : `<p class="muted">${escape(t("announce.no_speakers"))}</p>`;
  // The alarm's own site's warning first; every site's warning named by its site.
  const ordered = [...view.clips].sort((a, b) => (b.site === view.site) - (a.site === view.site));
  const clips = ordered.length
    ? ordered
        .map(
          (clip) => `<option value="${escape(clip.id)}" translate="no"${clip.id === view.clipId ? " selected" : ""}>${escape(
            clipName(state, clip),
          )} (${Math.round((clip.duration_ms ?? 0) / 1000)} s)</option>`,
        )
        .join("")
    : `<option value="">${escape(t("announce.no_clips"))}</option>`;
  const tts = view.tts ? "" : " disabled";
  const voices = VOICES.map(
    (voice) => `<option value="${voice}"${voice === view.voice ? " selected" : ""}>${escape(t(`voice.${voice}`))}</option>`,
  ).join("");
  const sendable = view.canAct && !view.busy && view.targets.length > 0 && (view.clipId || view.tts);
  return `<fieldset class="targets"><legend>${escape(t("announce.targets"))}</legend>
      ${speakers}
      <div class="target-tools">
        <button type="button" data-command="targets-zone"${disabled}>${escape(t("announce.zone_speakers"))}</button>
        <button type="button" data-command="targets-all"${disabled}>${escape(t("announce.all_speakers"))}</button>
      </div></fieldset>
    <label class="field"><span>${escape(t("announce.clip"))}</span>
      <select id="announce-clip" name="clip"${disabled}>${clips}</select></label>
    <fieldset class="tts"${tts}><legend>${escape(t("announce.text"))}</legend>
      <div class="tts-row">
        <textarea id="announce-text" name="text" rows="1" maxlength="300" placeholder="${escape(
          t("announce.text_hint"),
        )}">${escape(view.text)}</textarea>
        <select id="announce-voice" name="voice" aria-label="${escape(t("announce.voice"))}">${voices}</select>
      </div>
      <p class="muted coming-soon">${escape(t(view.tts ? "announce.text_note" : "announce.tts_soon"))}</p>
    </fieldset>
    <button type="submit" id="announce-send" class="primary"${sendable ? "" : " disabled"}>${escape(
      view.busy ? t("action.busy") : t("announce.send"),
    )} <kbd>N</kbd></button>`;
}

// Clip titles are the hub's data, in whatever language they were recorded; a site's
// default warning is named by its site (every site's has the same title).
function clipName(state, clip) {
  const name = (getLang() === "en" ? clip.name_en : clip.name_zh) || clip.title || clip.id;
  return clip.site ? t("clip.of_site", { site: siteName(state, clip.site), name }) : name;
}

// What an announcement played, by its clip's name: never the id of a spoken text's
// file ("tts-ce6a…").
function annClipName(state, ann, clips) {
  const id = ann.clip?.id ?? "";
  const clip = clips.find((item) => item.id === id);
  if (clip && !id.startsWith("tts-")) return clipName(state, clip);
  return t(id.startsWith("tts-") ? "ann.spoken" : "ann.clip_unknown");
}

function annsHtml(state, anns, clips) {
  if (!anns.length) return `<li class="muted">${escape(t("announce.none"))}</li>`;
  return [...anns]
    .reverse()
    .map(
      (ann) => `<li class="announcement" data-ann-id="${escape(ann.id)}">
        <span class="ann-label">${escape(clockTime(ann.created_at))} · ${
          ann.requested_by === EDGE_AUTO
            ? escape(t("ann.edge_auto"))
            : escape(annClipName(state, ann, clips))
        }</span>
        ${Object.entries(ann.speakers ?? {})
          .sort(([a], [b]) => a.localeCompare(b))
          .map(
            ([speaker, state]) => `<span class="speaker ann-${escape(state)}" data-speaker="${escape(speaker)}"
              data-state="${escape(state)}"><span translate="no">${escape(speaker)}</span> · ${escape(
                t(`ann.state.${state}`),
              )}</span>`,
          )
          .join("")}</li>`,
    )
    .join("");
}
