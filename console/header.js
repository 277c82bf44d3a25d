// What every page shows around it: the officer and the sound in the top bar, the
// page tabs with the count of alarms waiting, the connection and links banners, the
// callout of the alarm nobody has taken, and the window title. Also which sound
// plays, since the banners and the sound say the same things.

import { LANGS, t } from "./i18n.js";
import { renderLinksBanner, renderWallNotice } from "./links.js";
import { blindAlarm, formatAge, needsAlarmSound, newIntrusion, topUnacknowledged } from "./state.js";
import { escape, siteName, zoneName } from "./view.js";

// Below this a dropped socket is usually a hub restart or a 4008; past it, the
// officer is blind and should hear it.
const LOST_SOUND_AFTER_MS = 10_000;

const $ = (selector) => document.querySelector(selector);

export function renderTitle(state) {
  const open = state.alarms.size;
  document.title = open ? `(${open}) ${t("app.title")}` : t("app.title");
}

export function renderUser(state) {
  const user = state.user;
  document.body.dataset.role = user?.role ?? "";
  if (!user) {
    $("#user-badge").innerHTML = "";
    return;
  }
  const name = user.name || user.username;
  const role = t(`top.role.${user.role}`);
  // An account named after its role ("观察员") is not shown as "观察员 · 观察员".
  const sameAsRole = LANGS.some((lang) => t(`top.role.${user.role}`, {}, lang) === name);
  $("#user-badge").innerHTML = sameAsRole
    ? escape(role)
    : `<span translate="no">${escape(name)}</span> · ${escape(role)}`;
}

// A viewer watches; the alarm sound calls someone who can act. (A console that does
// not know its user yet, after a reload with the hub away, still sounds.)
function watchOnly(state) {
  return state.user?.role === "viewer";
}

export function renderSound(ctx) {
  const { sound } = ctx;
  const status = sound.status;
  document.body.dataset.sound = status;
  document.body.dataset.soundMode = sound.mode;
  const indicator = $("#sound-indicator");
  const silent = watchOnly(ctx.state);
  indicator.className = `sound-indicator sound-${silent ? "viewer" : status}`;
  indicator.querySelector(".label").textContent = t(silent ? "sound.viewer" : `sound.${status}`);
  // A critical alarm waits and the browser will not sound it: not a pill, a banner.
  const banner = $("#sound-banner");
  banner.hidden = silent || status !== "blocked" || !needsAlarmSound(ctx.state);
  banner.querySelector(".sound-banner-text").textContent = t("sound.blocked_alarm");
}

export function renderConnection(connection) {
  const status = connection?.status ?? "connecting";
  document.body.dataset.connection = status;
  const banner = $("#conn-banner");
  banner.hidden = status === "open";
  banner.className = `conn-banner conn-${status}`;
  banner.querySelector(".conn-text").textContent =
    status === "lost" ? t("conn.lost") : t("conn.connecting");
  const since = connection?.lostSince;
  banner.querySelector(".conn-duration").textContent =
    status === "lost" && since ? t("conn.lost_for", { duration: formatAge(Date.now() - since) }) : "";
}

// The hub's own links (PROTOCOL 7.13) and what the wall can vouch for.
export function renderLinks(ctx) {
  const { state, connection } = ctx;
  renderLinksBanner($("#links-banner"), state, ctx.ui.now(), connection?.status === "open");
  renderWallNotice($("#wall-notice"), ctx.ui.wallNotice(), state.alarms.size > 0);
}

export function updateSoundMode(ctx) {
  const { state, connection, sound } = ctx;
  const lostFor = connection?.lostSince ? Date.now() - connection.lostSince : 0;
  // A viewer watches; the alarm sound calls someone to act.
  if (watchOnly(state)) sound.setMode("idle");
  else if (needsAlarmSound(state)) sound.setMode("alarm");
  else if (connection?.status === "lost" && lostFor > LOST_SOUND_AFTER_MS) sound.setMode("lost");
  // The hub cannot hear the field: an alarm in its own right, at once.
  else if (connection?.status === "open" && blindAlarm(state)) sound.setMode("lost");
  else sound.setMode("idle");
  renderSound(ctx);
}

// shownAlarmId: the alarm of the detail page being shown, if any.
export function renderNav(ctx, shownAlarmId) {
  const { state, page } = ctx;
  const current = page === "detail" ? "alarms" : page;
  for (const button of document.querySelectorAll("#pages [data-page]")) {
    if (button.dataset.page === current) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  const waiting = [...state.alarms.values()].filter((alarm) => alarm.state === "open");
  const count = $("#nav-alarm-count");
  count.textContent = waiting.length ? String(waiting.length) : "";
  count.className = `nav-count${waiting.some((alarm) => alarm.severity === "critical") ? " critical" : ""}`;
  // A critical alarm nobody has acknowledged stays in a panel on every page, and
  // away from the wall so does any unacknowledged one, until someone takes it.
  const top = topUnacknowledged(state);
  const callout = $("#alarm-callout");
  const show =
    top !== null &&
    (page !== "alarms" || top.severity === "critical") &&
    !(page === "detail" && shownAlarmId === top.id);
  callout.hidden = !show;
  if (show) {
    callout.className = `alarm-callout sev-${top.severity}`;
    callout.dataset.alarmId = top.id;
    const ack = callout.querySelector(".callout-ack");
    ack.disabled = !ctx.actions.canAct() || ctx.actions.isBusy("ack", top.id);
    // On a detail page A acknowledges the alarm shown there, not this one.
    callout.querySelector(".callout-key").hidden = page === "detail";
    // Someone entered the water again: not the old alarm, whatever its age (7.36).
    const reraised = newIntrusion(top) !== null;
    callout.dataset.intrusion = reraised ? "new" : "";
    callout.querySelector(".callout-text").textContent = t(reraised ? "new_intrusion.banner" : "new_alarm.banner", {
      where: `${t(`severity.${top.severity}`)} · ${siteName(state, top.site)} · ${zoneName(state, top.site, top.zone)}`,
    });
  }
}
