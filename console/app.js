// The duty console: login, the live alarm picture, actions, keyboard, sound.

import { Api, ApiError } from "./api.js";
import { HubConnection } from "./connection.js";
import { getLang, loadLang, otherLang, setLang, t, translateStatic } from "./i18n.js";
import {
  defaultTargets,
  hubTimeline,
  renderDetail,
  siteSpeakers,
} from "./detail.js";
import { renderLinksBanner, renderWallNotice, wallNotice } from "./links.js";
import { renderMapDetail, renderMaps } from "./map.js";
import { chartSvg, handoverHtml, incidentsHtml, renderDevices } from "./pages.js";
import { AlertSound } from "./sound.js";
import {
  addHistory,
  alignBuckets,
  announcementsOf,
  applyAlarmResponse,
  applyMessage,
  blindAlarm,
  bucketEvents,
  createState,
  formatAge,
  needsAlarmSound,
  shiftSummary,
  sortedAlarms,
  statsBuckets,
  topUnacknowledged,
} from "./state.js";
import {
  clockTime,
  escape,
  renderAlarms,
  renderFeed,
  renderStatus,
  siteName,
  updateAges,
  zoneName,
} from "./view.js";

const OUTCOMES = ["persuaded_away", "rescued", "false_alarm", "patrol_sent", "other"];
const ACTING_ROLES = new Set(["officer", "supervisor", "admin"]);
// Below this a dropped socket is usually a hub restart or a 4008; past it, the
// officer is blind and should hear it.
const LOST_SOUND_AFTER_MS = 10_000;
const FRESH_MS = 10_000;
const HISTORY_EVENTS = 200;
const PAGES = ["alarms", "map", "devices", "history", "handover"];
// Most events the history chart counts itself when the hub has no statistics.
const STATS_EVENTS_LIMIT = 10_000;
const HOUR_MS = 3_600_000;

const $ = (selector) => document.querySelector(selector);

const api = new Api();
const sound = new AlertSound();
let state = createState();
let connection = null;
let helloSeen = false;
let selectedId = null;
const fresh = new Map(); // alarm id -> time it arrived
const busy = new Set(); // "action:alarmId"
// event id -> {url} once loaded, {pending: true} while asked or waiting to retry,
// {failed: true} after the last retry.
const snapshots = new Map();
// The JPEG travels on its own topic (PROTOCOL 2.2) and may land after its event.
const SNAPSHOT_RETRIES_MS = [1000, 2000, 4000, 8000];
let resolvingId = null;
let page = "alarms";
let pageBeforeDetail = "alarms";
let mapSelection = null; // {kind: "zone" | "device", site, id}
// The alarm detail being shown: the alarm (also once resolved), its timeline and
// the announce panel's choices, which survive redraws.
let detail = null;
let clips = null;
let ttsRefused = false;

const ui = {
  now: () => api.now(),
  canAct: () => ACTING_ROLES.has(state.user?.role),
  isNew: (id) => fresh.has(id),
  busyActions: (id) =>
    [...busy].filter((key) => key.endsWith(`:${id}`)).map((key) => key.split(":")[0]),
  selected: (alarms) => alarms.find((alarm) => alarm.id === selectedId) ?? alarms[0] ?? null,
  // Asking for a snapshot the page has not seen starts loading it; the card is
  // drawn again when it arrives. null: not (yet) available.
  snapshotUrl: (eventId) => {
    const known = snapshots.get(eventId);
    if (known === undefined) loadSnapshot(eventId, 0);
    return known?.url ?? null;
  },
  snapshotFailed: (eventId) => snapshots.get(eventId)?.failed === true,
  // Text-to-speech is refused by the hub (PROTOCOL 7.3) until it announces support.
  // The hub's own timeline export (JSON to save, a printable page in the officer's
  // language). A click asks the hub for a short-lived signed link (PROTOCOL 7.3):
  // the token never goes into a URL.
  exportLinks: (alarmId) => {
    const base = `/api/alarms/${encodeURIComponent(alarmId)}/timeline`;
    const lang = getLang() === "en" ? "en" : "zh";
    return `<a class="button-link" data-export="json" href="${escape(base)}"
        download="timeline-${escape(alarmId)}.json">${escape(t("history.export_json"))}</a>
      <a class="button-link" data-export="html" href="${escape(`${base}?format=html&lang=${lang}`)}"
        target="_blank" rel="noopener">${escape(t("history.export_html"))}</a>`;
  },
  // The hub speaks typed text (PROTOCOL 7.10); an older hub refuses it with
  // not_supported (7.3), and then the text input waits, marked "coming soon".
  ttsSupported: () => !ttsRefused,
  // What the wall says when it cannot vouch for "no open alarms" (null: it can).
  wallNotice: () => wallNotice(state, connection, helloSeen),
};

// --- views -----------------------------------------------------------------------

function showView(name) {
  document.body.dataset.view = name;
  $("#login-view").hidden = name !== "login";
  $("#console-view").hidden = name !== "console";
}

function applyLanguage() {
  document.documentElement.lang = getLang();
  translateStatic(document);
  renderOutcomes();
  retranslateToasts();
  const loginError = $("#login-error").message;
  if (loginError) setLoginError(loginError.key, loginError.params);
  renderAll();
  // Hidden pages keep labels too (aria-label, titles): redraw them in the new language.
  if (document.body.dataset.view === "console") {
    renderMaps($("#map-list"), state, mapSelection);
    renderMapDetail($("#map-detail"), state, mapSelection);
    renderDevices($("#edges-list"), $("#devices-table"), $("#devices-count"), state, ui.now());
    renderHistoryPage();
    renderHandover();
  }
}

function renderAll() {
  if (document.body.dataset.view !== "console") {
    document.title = t("app.title");
    return;
  }
  renderUser();
  renderStatus($("#status-strip"), state);
  renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  renderFeed($("#feed-list"), state);
  renderSound();
  renderConnection();
  renderLinks();
  renderNav();
  renderPage();
  const open = state.alarms.size;
  document.title = open ? `(${open}) ${t("app.title")}` : t("app.title");
}

function renderUser() {
  const user = state.user;
  $("#user-badge").innerHTML = user
    ? `<span translate="no">${escape(user.name || user.username)}</span> · ${escape(
        t(`top.role.${user.role}`),
      )}`
    : "";
}

function renderSound() {
  const status = sound.status;
  document.body.dataset.sound = status;
  document.body.dataset.soundMode = sound.mode;
  const indicator = $("#sound-indicator");
  indicator.className = `sound-indicator sound-${status}`;
  indicator.querySelector(".label").textContent = t(`sound.${status}`);
}

function renderConnection() {
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
function renderLinks() {
  renderLinksBanner($("#links-banner"), state, ui.now(), connection?.status === "open");
  renderWallNotice($("#wall-notice"), ui.wallNotice(), state.alarms.size > 0);
}

function updateSoundMode() {
  const lostFor = connection?.lostSince ? Date.now() - connection.lostSince : 0;
  if (needsAlarmSound(state)) sound.setMode("alarm");
  else if (connection?.status === "lost" && lostFor > LOST_SOUND_AFTER_MS) sound.setMode("lost");
  // The hub cannot hear the field: an alarm in its own right, at once.
  else if (connection?.status === "open" && blindAlarm(state)) sound.setMode("lost");
  else sound.setMode("idle");
}

function renderOutcomes() {
  $("#resolve-outcomes").innerHTML = OUTCOMES.map(
    (outcome, index) => `<label class="outcome">
      <input type="radio" name="outcome" value="${outcome}" />
      <kbd>${index + 1}</kbd> <span>${escape(t(`outcome.${outcome}`))}</span></label>`,
  ).join("");
}

// Toasts keep their key and parameters so a language switch re-translates them.
function toast(key, params = {}, kind = "info") {
  const el = document.createElement("div");
  el.className = `toast toast-${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.message = { key, params };
  el.textContent = t(key, params);
  $("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 10_000 : 5_000);
}

function retranslateToasts() {
  for (const el of $("#toasts").children) el.textContent = t(el.message.key, el.message.params);
}

// --- login -----------------------------------------------------------------------

// The login error keeps its key, so a language switch re-translates it.
function setLoginError(key, params = {}) {
  const error = $("#login-error");
  error.hidden = !key;
  error.message = key ? { key, params } : null;
  error.textContent = key ? t(key, params) : "";
}

function showLogin(messageKey = null) {
  showView("login");
  setLoginError(messageKey);
  $("#login-submit").disabled = false;
  $("#login-submit").textContent = t("login.submit");
  document.title = t("app.title");
  $("#login-username").focus();
}

async function onLogin(event) {
  event.preventDefault();
  // The click is the user gesture browsers require before a page may make sound.
  sound.arm();
  const username = $("#login-username").value.trim();
  const password = $("#login-password").value;
  const submit = $("#login-submit");
  submit.disabled = true;
  submit.textContent = t("login.busy");
  setLoginError(null);
  try {
    await api.login(username, password);
    const user = await api.me();
    $("#login-password").value = "";
    startConsole(user);
  } catch (failure) {
    if (failure instanceof ApiError && (failure.status === 401 || failure.status === 400)) {
      setLoginError("login.bad_credentials");
    } else if (failure instanceof ApiError && failure.status === 429) {
      // Throttled (PROTOCOL 7.16): say how long, rather than let the officer keep trying.
      setLoginError("login.throttled", { seconds: failure.retryAfter ?? 60 });
    } else if (failure instanceof ApiError && failure.status === 0) {
      setLoginError("login.unreachable");
    } else {
      setLoginError("login.failed", { detail: failure.message });
    }
    submit.disabled = false;
    submit.textContent = t("login.submit");
  }
}

function startConsole(user) {
  stopConsole();
  state = createState();
  state.user = user;
  helloSeen = false;
  selectedId = null;
  mapSelection = null;
  historyData = null;
  handoverData = null;
  clips = null;
  showView("console");
  showPage("alarms");
  connection = new HubConnection(api, {
    getSince: () => state.lastSeq,
    onMessage,
    onStatus: () => {
      state.hubReachable = connection.status === "open";
      renderConnection();
      // The wall and the sites: known again, or only as last known.
      renderStatus($("#status-strip"), state);
      renderPage();
      renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
      renderLinks();
      updateSoundMode();
    },
    onAuthFailure: () => endSession("login.expired"),
  });
  connection.start();
  renderAll();
}

function stopConsole() {
  connection?.stop();
  connection = null;
  sound.setMode("idle");
  for (const eventId of [...snapshots.keys()]) dropSnapshot(eventId);
  fresh.clear();
  busy.clear();
  closeDialogs();
}

function endSession(messageKey = null) {
  if (document.body.dataset.view === "login") return;
  stopConsole();
  // Ends the session on the hub too (its tokens stop working), then forgets them here.
  api.logout();
  state = createState();
  showLogin(messageKey);
}

// --- hub messages ----------------------------------------------------------------

function onMessage(message) {
  const result = applyMessage(state, message);
  if (!result.applied) return;
  if (message.type === "hello") {
    const first = !helloSeen;
    helloSeen = true;
    loadHistory();
    if (first) result.newAlarms.length = 0; // what was already open on login does not chime
  }
  // The hub holds this picture now: one that could not be loaded before is asked for again.
  if (result.snapshot && snapshots.get(result.snapshot)?.failed) dropSnapshot(result.snapshot);
  const now = Date.now();
  for (const alarm of result.newAlarms) fresh.set(alarm.id, now);
  if (result.newAlarms.some((alarm) => alarm.severity !== "critical")) sound.chime();
  if (resolvingId && result.resolved.includes(resolvingId)) {
    closeDialogs();
    toast("resolve.gone");
  }
  if (result.parts.has("status") || result.parts.has("user")) {
    renderUser();
    renderStatus($("#status-strip"), state);
  }
  if (result.parts.size) renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  if (result.parts.has("events") || result.parts.has("status")) renderFeed($("#feed-list"), state);
  if (result.parts.has("links") || result.parts.has("alarms")) renderLinks();
  if (result.parts.has("alarms")) {
    pruneSnapshots();
    const open = state.alarms.size;
    document.title = open ? `(${open}) ${t("app.title")}` : t("app.title");
  }
  if (handoverData?.byId && message.type === "alarm") handoverData.byId.set(message.data.id, message.data);
  if (detail && message.type === "alarm" && message.data.id === detail.id) {
    const countChanged = detail.alarm && detail.alarm.event_count !== message.data.event_count;
    detail.alarm = message.data;
    if (countChanged || detail.timeline?.source === "hub") reloadTimeline();
  } else if (detail && message.type === "hello" && state.alarms.has(detail.id)) {
    detail.alarm = state.alarms.get(detail.id);
  }
  renderNav();
  if (page !== "alarms") renderPage(message.type);
  updateSoundMode();
}

// The hello carries alarms but not their events: fetch recent ones for each card's
// latest kind and snapshot, and for the feed. A hub without the endpoint only costs
// the cards their "latest" line.
async function loadHistory() {
  try {
    const events = await api.recentEvents(HISTORY_EVENTS);
    if (Array.isArray(events)) {
      addHistory(state, events);
      renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
      renderFeed($("#feed-list"), state);
    }
  } catch (error) {
    console.warn("recent events unavailable", error.message);
  }
}

async function loadSnapshot(eventId, attempt) {
  snapshots.set(eventId, { pending: true });
  let entry;
  try {
    const blob = await api.snapshot(eventId);
    entry = blob instanceof Blob ? { url: URL.createObjectURL(blob) } : { failed: true };
  } catch (error) {
    if (error.status === 404 && attempt < SNAPSHOT_RETRIES_MS.length) {
      setTimeout(() => {
        if (snapshots.has(eventId)) loadSnapshot(eventId, attempt + 1);
      }, SNAPSHOT_RETRIES_MS[attempt]);
      return;
    }
    console.warn("snapshot", eventId, error.message);
    entry = { failed: true };
  }
  if (!snapshots.has(eventId)) {
    // Logged out or the alarm went while loading.
    if (entry.url) URL.revokeObjectURL(entry.url);
    return;
  }
  snapshots.set(eventId, entry);
  renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  if (page === "detail") renderPage();
}

function dropSnapshot(eventId) {
  const entry = snapshots.get(eventId);
  if (entry?.url) URL.revokeObjectURL(entry.url);
  snapshots.delete(eventId);
}

// Only the latest event of an active alarm shows its snapshot: free the others.
function pruneSnapshots() {
  const shown = new Set([...state.alarms.values()].map((alarm) => alarm.last_event_id));
  for (const entry of detail?.entries ?? []) if (entry.eventId) shown.add(entry.eventId);
  for (const eventId of [...snapshots.keys()]) if (!shown.has(eventId)) dropSnapshot(eventId);
}

// --- actions ---------------------------------------------------------------------

async function act(action, alarmId, call, doneKey) {
  const key = `${action}:${alarmId}`;
  if (busy.has(key)) return;
  busy.add(key);
  renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  if (page === "detail") renderPage();
  try {
    const result = await call();
    if (result && typeof result === "object") {
      if (action === "announce" && result.id && !state.announcements.has(result.id)) {
        state.announcements.set(result.id, result);
      } else if (action !== "announce") {
        applyAlarmResponse(state, result);
        if (detail?.id === result.id && String(result.updated_at) >= String(detail.alarm?.updated_at)) {
          detail.alarm = result;
        }
      }
    }
    toast(doneKey, {}, "ok");
    return true;
  } catch (error) {
    toast(...actionError(error), "error");
    return false;
  } finally {
    busy.delete(key);
    renderNav();
    renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
    if (page === "detail") renderPage();
    updateSoundMode();
  }
}

function actionError(error) {
  if (error instanceof ApiError) {
    if (error.status === 403) return ["action.forbidden", {}];
    if (error.status === 404) return ["action.not_found", {}];
    if (error.status === 409) return ["action.conflict", {}];
  }
  return ["action.failed", { detail: error.message }];
}

function acknowledge(alarmId) {
  selectedId = alarmId;
  return act("ack", alarmId, () => api.ack(alarmId), "action.acked");
}

function announce(alarmId) {
  return act("announce", alarmId, () => api.announce(alarmId), "action.announced");
}

function openResolve(alarmId) {
  const alarm = state.alarms.get(alarmId);
  if (!alarm || !ui.canAct()) return;
  resolvingId = alarmId;
  $("#resolve-alarm").textContent = `${siteName(state, alarm.site)} · ${zoneName(
    state,
    alarm.site,
    alarm.zone,
  )} · ${clockTime(alarm.opened_at)}`;
  $("#resolve-form").reset();
  $("#resolve-error").hidden = true;
  $("#resolve-dialog").showModal();
  $("#resolve-outcomes input").focus();
}

async function submitResolve(event) {
  event.preventDefault();
  const alarmId = resolvingId;
  const outcome = $("#resolve-form").querySelector("input[name=outcome]:checked")?.value;
  if (!outcome) {
    $("#resolve-error").hidden = false;
    $("#resolve-error").textContent = t("resolve.pick");
    return;
  }
  const note = $("#resolve-note").value.trim();
  $("#resolve-submit").disabled = true;
  const done = await act("resolve", alarmId, () => api.resolve(alarmId, outcome, note), "action.resolved");
  $("#resolve-submit").disabled = false;
  if (done) closeDialogs();
}

function closeDialogs() {
  resolvingId = null;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

function showSnapshot(alarmId) {
  const alarm = state.alarms.get(alarmId);
  const url = alarm && snapshots.get(alarm.last_event_id)?.url;
  if (!url) return;
  $("#snapshot-large").src = url;
  $("#snapshot-large").alt = t("alarm.snapshot");
  $("#snapshot-dialog").showModal();
}

function switchLanguage() {
  setLang(otherLang());
  applyLanguage();
}

function moveSelection(step) {
  const alarms = sortedAlarms(state);
  if (alarms.length === 0) return;
  const current = alarms.indexOf(ui.selected(alarms));
  const next = alarms[Math.min(alarms.length - 1, Math.max(0, current + step))];
  selectedId = next.id;
  renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  document
    .querySelector(`article[data-alarm-id="${CSS.escape(next.id)}"]`)
    ?.scrollIntoView({ block: "nearest" });
}

// --- pages -----------------------------------------------------------------------

function showPage(name) {
  if (name !== "detail" && detail) {
    detail = null;
    // Nothing of a closed detail stays behind (its labels would miss a language switch).
    $("#detail-root").innerHTML = "";
    $("#detail-root").dataset.frame = "";
  }
  page = name;
  document.body.dataset.page = name;
  $("#workspace").hidden = name !== "alarms";
  for (const other of ["map", "detail", "devices", "history", "handover"]) {
    $(`#${other}-page`).hidden = name !== other;
  }
  for (const el of document.querySelectorAll("#shortcuts [data-for]")) {
    el.hidden = el.dataset.for !== name;
  }
  renderNav();
  renderPage();
  if (name === "history") loadHistoryPage();
  if (name === "handover") loadHandover();
}

function renderNav() {
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
    !(page === "detail" && detail?.id === top.id);
  callout.hidden = !show;
  if (show) {
    callout.className = `alarm-callout sev-${top.severity}`;
    callout.dataset.alarmId = top.id;
    const ack = callout.querySelector(".callout-ack");
    ack.disabled = !ui.canAct() || busy.has(`ack:${top.id}`);
    // On a detail page A acknowledges the alarm shown there, not this one.
    callout.querySelector(".callout-key").hidden = page === "detail";
    callout.querySelector(".callout-text").textContent = t("new_alarm.banner", {
      where: `${t(`severity.${top.severity}`)} · ${siteName(state, top.site)} · ${zoneName(state, top.site, top.zone)}`,
    });
  }
}

function renderPage(messageType = null) {
  if (document.body.dataset.view !== "console") return;
  if (page === "map") {
    renderMaps($("#map-list"), state, mapSelection);
    renderMapDetail($("#map-detail"), state, mapSelection);
  } else if (page === "devices") {
    renderDevices($("#edges-list"), $("#devices-table"), $("#devices-count"), state, ui.now());
  } else if (page === "detail" && detail) {
    renderDetail($("#detail-root"), state, ui, detail);
    updateAges($("#detail-root"), ui.now());
  } else if (page === "history" && messageType === null) {
    renderHistoryPage();
  } else if (page === "handover" && (messageType === null || messageType === "alarm")) {
    renderHandover();
  }
}

// --- alarm detail ----------------------------------------------------------------

async function openDetail(alarmId) {
  if (page !== "detail") pageBeforeDetail = page;
  const known = state.alarms.get(alarmId) ?? null;
  detail = {
    id: alarmId,
    alarm: known,
    timeline: null,
    announcements: new Map(),
    clipId: null,
    clips: clips ?? [],
    text: "",
    voice: getLang() === "en" ? "en" : "cmn",
    targets: known ? defaultTargets(state, known) : new Set(),
    entries: [],
    error: null,
  };
  $("#detail-root").dataset.frame = "";
  showPage("detail");
  const mine = detail;
  try {
    if (!mine.alarm) {
      mine.alarm = await api.alarm(alarmId);
      mine.targets = defaultTargets(state, mine.alarm);
    }
  } catch (error) {
    mine.error = error;
    if (detail === mine) renderPage();
    return;
  }
  if (detail !== mine) return;
  renderPage();
  await Promise.all([loadClips(), reloadTimeline(), loadAnnouncements(mine)]);
}

async function loadClips() {
  if (clips === null) {
    try {
      const answer = await api.clips();
      clips = Array.isArray(answer) ? answer : [];
    } catch (error) {
      console.warn("clips unavailable", error.message);
      return;
    }
  }
  if (!detail?.alarm) return;
  detail.clips = clips;
  if (!detail.clipId) {
    detail.clipId = (clips.find((clip) => clip.site === detail.alarm.site) ?? clips[0])?.id ?? null;
  }
  if (page === "detail") renderPage();
}

// Announcements older than the hello's hour are fetched one by one.
async function loadAnnouncements(ctx) {
  const missing = (ctx.alarm.announcements ?? []).filter((id) => !state.announcements.has(id));
  const found = await Promise.all(missing.map((id) => api.announcement(id).catch(() => null)));
  for (const ann of found) if (ann?.id) ctx.announcements.set(ann.id, ann);
  if (detail === ctx && page === "detail") renderPage();
}

// The hub's timeline when it has one; otherwise the alarm's events from the store.
async function fetchTimeline(alarm) {
  try {
    const entries = hubTimeline(await api.timeline(alarm.id));
    if (entries) return { source: "hub", entries };
  } catch (error) {
    if (error.status !== 404) console.warn("timeline", error.message);
  }
  const margin = 60_000;
  const from = new Date(Date.parse(alarm.opened_at) - margin).toISOString();
  const end = alarm.resolved_at ?? alarm.updated_at;
  const to = end ? new Date(Date.parse(end) + margin).toISOString() : undefined;
  let events = [];
  try {
    events = await api.events({ site: alarm.site, from, to, limit: 2000 });
  } catch (error) {
    console.warn("alarm events", error.message);
  }
  return { source: "built", events: Array.isArray(events) ? events : [] };
}

let timelineLoading = null;
async function reloadTimeline() {
  const ctx = detail;
  if (!ctx?.alarm) return;
  // One fetch at a time; a burst of events asks for one more afterwards.
  if (timelineLoading) {
    timelineLoading.again = true;
    return;
  }
  timelineLoading = { again: false };
  try {
    const timeline = await fetchTimeline(ctx.alarm);
    if (detail === ctx) {
      ctx.timeline = timeline;
      if (page === "detail") renderPage();
    }
  } finally {
    const again = timelineLoading.again;
    timelineLoading = null;
    if (again && detail === ctx) reloadTimeline();
  }
}

function closeDetail() {
  showPage(pageBeforeDetail === "detail" ? "alarms" : pageBeforeDetail);
}

function sendAnnouncement() {
  if (!detail?.alarm || !ui.canAct()) return;
  const speakers = [...detail.targets].sort();
  if (speakers.length === 0) {
    toast("announce.pick_target", {}, "error");
    return;
  }
  const body = { alarm_id: detail.id, speakers };
  const text = detail.text.trim();
  // Typed text is spoken instead of the clip: the hub takes one or the other.
  if (ui.ttsSupported() && text) {
    body.text = text;
    body.voice = detail.voice;
  } else if (detail.clipId) {
    body.clip_id = detail.clipId;
  }
  return act("announce", detail.id, async () => {
    try {
      return await api.announceWith(body);
    } catch (error) {
      if (body.text && error.code === "not_supported") {
        ttsRefused = true;
        renderPage();
      }
      throw error;
    }
  }, "action.announced");
}

function onDetailInput(event) {
  if (!detail) return;
  const target = event.target;
  if (target.name === "target") {
    if (target.checked) detail.targets.add(target.value);
    else detail.targets.delete(target.value);
  } else if (target.id === "announce-clip") {
    detail.clipId = target.value || null;
  } else if (target.id === "announce-voice") {
    detail.voice = target.value;
  } else if (target.id === "announce-text") {
    detail.text = target.value;
    return; // kept for sending; the form need not be drawn again
  } else {
    return;
  }
  renderPage();
}

// --- history and handover --------------------------------------------------------

let historyData = null; // {series, interval, source, incidents} or {error}
let handoverData = null;

function fillHistoryFilters() {
  const site = $("#history-site");
  const chosenSite = site.value;
  site.innerHTML = [`<option value="">${escape(t("history.all_sites"))}</option>`]
    .concat(
      [...state.sites.values()]
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((s) => `<option value="${escape(s.id)}">${escape(siteName(state, s.id))}</option>`),
    )
    .join("");
  site.value = chosenSite;
  const outcome = $("#history-outcome");
  const chosenOutcome = outcome.value;
  outcome.innerHTML = [`<option value="">${escape(t("history.all_outcomes"))}</option>`]
    .concat(OUTCOMES.map((o) => `<option value="${o}">${escape(t(`outcome.${o}`))}</option>`))
    .join("");
  outcome.value = chosenOutcome;
}

async function loadHistoryPage() {
  fillHistoryFilters();
  const site = $("#history-site").value;
  const interval = $("#history-interval").value;
  const hours = Number($("#history-range").value);
  const to = ui.now();
  const from = to - hours * HOUR_MS;
  const sites = site ? [site] : [...state.sites.keys()].sort();
  const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  historyData = { loading: true };
  renderHistoryPage();
  let series;
  let source = "stats";
  try {
    // Days in the officer's time zone, so a day bar is a day on the wall clock.
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const answers = await Promise.all(
      sites.map((s) => api.eventStats({ site: s, interval, tz, ...range })),
    );
    series = answers.map((answer, index) => {
      const points = statsBuckets(answer);
      if (points === null) throw new Error("unexpected statistics");
      return { site: sites[index], buckets: alignBuckets(points, interval, from, to) };
    });
  } catch {
    source = "events";
    try {
      const events = await api.events({ site, ...range, limit: STATS_EVENTS_LIMIT });
      series = sites.map((s) => ({
        site: s,
        buckets: bucketEvents(
          events.filter((event) => event.site === s),
          interval,
          from,
          to,
        ),
      }));
    } catch (error) {
      historyData = { error: error.message };
      renderHistoryPage();
      return;
    }
  }
  let incidents = [];
  try {
    incidents = await api.alarms({ state: "resolved", site, since: range.from, limit: 1000 });
  } catch (error) {
    console.warn("incidents", error.message);
  }
  historyData = {
    series,
    interval,
    source,
    incidents: incidents
      .filter((alarm) => Date.parse(alarm.resolved_at) >= from)
      .sort((a, b) => String(b.opened_at).localeCompare(String(a.opened_at))),
  };
  if (page === "history") renderHistoryPage();
}

function renderHistoryPage() {
  fillHistoryFilters();
  const chart = $("#history-chart");
  const source = $("#history-source");
  if (!historyData || historyData.loading) {
    chart.innerHTML = `<p class="muted">${escape(t("history.loading"))}</p>`;
    source.textContent = "";
    return;
  }
  if (historyData.error) {
    chart.innerHTML = `<p class="form-error">${escape(t("history.failed", { detail: historyData.error }))}</p>`;
    source.textContent = "";
    return;
  }
  source.textContent = t(`history.source_${historyData.source}`);
  chart.innerHTML = chartSvg(state, historyData.series, historyData.interval);
  const outcome = $("#history-outcome").value;
  const incidents = historyData.incidents.filter((alarm) => !outcome || alarm.outcome === outcome);
  $("#incidents-count").textContent = t("alarms.count", { count: incidents.length });
  $("#incidents-table").innerHTML = incidentsHtml(state, incidents, ui.exportLinks);
}

async function loadHandover() {
  const hours = Number($("#handover-hours").value);
  const now = ui.now();
  const from = now - hours * HOUR_MS;
  handoverData = { loading: true };
  renderHandover();
  try {
    const list = await api.alarms({ since: new Date(from).toISOString(), limit: 1000 });
    handoverData = { from, byId: new Map(list.map((alarm) => [alarm.id, alarm])) };
  } catch (error) {
    handoverData = { error: error.message };
  }
  if (page === "handover") renderHandover();
}

function renderHandover() {
  const root = $("#handover-root");
  if (!handoverData || handoverData.loading) {
    root.innerHTML = `<p class="muted">${escape(t("handover.loading"))}</p>`;
  } else if (handoverData.error) {
    root.innerHTML = `<p class="form-error">${escape(t("handover.failed", { detail: handoverData.error }))}</p>`;
  } else {
    // The list as loaded, brought up to date by the alarms the hub pushed since.
    const merged = new Map(handoverData.byId);
    for (const [id, alarm] of merged) {
      if (alarm.state !== "resolved" && helloSeen && !state.alarms.has(id)) merged.delete(id);
    }
    for (const alarm of state.alarms.values()) merged.set(alarm.id, alarm);
    root.innerHTML = handoverHtml(state, shiftSummary([...merged.values()], handoverData.from, ui.now()), ui.now());
  }
}

// --- input -----------------------------------------------------------------------

function onKey(event) {
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  const target = event.target;
  const typing = target.closest?.(
    "textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox])",
  );
  const dialog = document.querySelector("dialog[open]");
  if (dialog?.id === "resolve-dialog" && !typing && /^[1-5]$/.test(event.key)) {
    const radio = dialog.querySelectorAll("input[name=outcome]")[Number(event.key) - 1];
    radio.checked = true;
    radio.focus();
    event.preventDefault();
    return;
  }
  if (typing || dialog) return;
  const key = event.key.toLowerCase();
  if (key === "l") {
    switchLanguage();
    event.preventDefault();
    return;
  }
  if (document.body.dataset.view !== "console") return;
  if (/^[1-5]$/.test(key)) {
    showPage(PAGES[Number(key) - 1]);
    event.preventDefault();
    return;
  }
  if (page === "detail") {
    onDetailKey(event, key);
    return;
  }
  if (key === "a" && page !== "alarms") {
    // Everywhere but a detail page, A takes the top unacknowledged alarm (the panel's).
    const top = topUnacknowledged(state);
    if (top && ui.canAct()) acknowledge(top.id);
    event.preventDefault();
    return;
  }
  if (page === "map" && (key === "enter" || key === " ")) {
    const item = target.closest?.("[data-map-kind]");
    if (item) {
      selectOnMap(item);
      event.preventDefault();
    }
    return;
  }
  if (page !== "alarms") return;
  const alarms = sortedAlarms(state);
  const selected = ui.selected(alarms);
  if (key === "enter" || key === "d") {
    // Enter on a focused button is that button's click, not "open".
    if (target.closest?.("button")) return;
    if (selected) openDetail(selected.id);
  } else if (key === "a") {
    const top = topUnacknowledged(state);
    if (top && ui.canAct()) acknowledge(top.id);
  } else if (key === "n") {
    if (selected && ui.canAct()) announce(selected.id);
  } else if (key === "r") {
    if (selected) openResolve(selected.id);
  } else if (key === "arrowdown" || key === "j") {
    moveSelection(1);
  } else if (key === "arrowup" || key === "k") {
    moveSelection(-1);
  } else {
    return;
  }
  event.preventDefault();
}

function onDetailKey(event, key) {
  const alarm = detail?.alarm;
  if (key === "escape") closeDetail();
  else if (key === "a") {
    if (alarm?.state === "open" && ui.canAct()) acknowledge(alarm.id);
  } else if (key === "n") sendAnnouncement();
  else if (key === "r") {
    if (alarm) openResolve(alarm.id);
  } else return;
  event.preventDefault();
}

function selectOnMap(item) {
  const kind = item.dataset.mapKind;
  mapSelection = {
    kind,
    site: item.dataset.site,
    id: kind === "zone" ? item.dataset.zone : item.dataset.device,
  };
  renderPage();
  // The map was redrawn: keep the keyboard where it was.
  const selector = kind === "zone"
    ? `[data-map-kind="zone"][data-site="${CSS.escape(mapSelection.site)}"][data-zone="${CSS.escape(mapSelection.id)}"]`
    : `[data-map-kind="device"][data-device="${CSS.escape(mapSelection.id)}"]`;
  document.querySelector(selector)?.focus();
}

function showEventSnapshot(eventId) {
  const url = snapshots.get(eventId)?.url;
  if (!url) return;
  $("#snapshot-large").src = url;
  $("#snapshot-large").alt = t("alarm.snapshot");
  $("#snapshot-dialog").showModal();
}

// An export link: the href names what to export; the browser loads a signed link
// to it instead (a download, or the printable page in a new tab).
async function openExport(link) {
  const path = link.getAttribute("href");
  // Opened now, inside the click: a window opened after the await would be a popup.
  const tab = link.dataset.export === "html" ? open("", "_blank") : null;
  if (tab) tab.opener = null;
  try {
    const signed = await api.link(path);
    if (tab) {
      tab.location.href = signed;
      return;
    }
    const save = document.createElement("a");
    save.href = signed;
    save.download = link.getAttribute("download") ?? "";
    document.body.append(save);
    save.click();
    save.remove();
  } catch (error) {
    tab?.close();
    console.error("export", error);
  }
}

function onClick(event) {
  const exportLink = event.target.closest("a[data-export]");
  if (exportLink) {
    event.preventDefault();
    openExport(exportLink);
    return;
  }
  const commandEl = event.target.closest("[data-command]");
  const command = commandEl?.dataset.command;
  if (command === "lang") switchLanguage();
  else if (command === "logout") endSession();
  else if (command === "resolve-cancel" || command === "snapshot-close") closeDialogs();
  else if (command === "open-detail") openDetail(commandEl.dataset.alarmId);
  else if (command === "detail-back") closeDetail();
  else if (command === "snapshot-event") showEventSnapshot(commandEl.dataset.eventId);
  else if (command === "handover-refresh") loadHandover();
  else if (command === "print") print();
  else if (command === "callout-open") openDetail($("#alarm-callout").dataset.alarmId);
  else if (command === "callout-ack" && ui.canAct()) acknowledge($("#alarm-callout").dataset.alarmId);
  else if (command === "targets-zone" && detail?.alarm) {
    detail.targets = defaultTargets(state, detail.alarm);
    renderPage();
  } else if (command === "targets-all" && detail?.alarm) {
    detail.targets = new Set(siteSpeakers(state, detail.alarm.site).map((s) => s.id));
    renderPage();
  }
  // "arm-sound" needs nothing more: every click arms the sound below.
  const pageButton = event.target.closest("#pages [data-page]");
  if (pageButton) showPage(pageButton.dataset.page);
  const mapItem = event.target.closest("[data-map-kind]");
  if (mapItem) selectOnMap(mapItem);
  const detailAction = event.target.closest("[data-detail-action]");
  if (detailAction && !detailAction.disabled && detail?.alarm) {
    if (detailAction.dataset.detailAction === "ack") acknowledge(detail.id);
    else if (detailAction.dataset.detailAction === "resolve") openResolve(detail.id);
  }

  const actionEl = event.target.closest("[data-action]");
  const card = event.target.closest("article[data-alarm-id]");
  if (card && !actionEl) {
    selectedId = card.dataset.alarmId;
    renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  }
  if (actionEl && card && !actionEl.disabled) {
    const id = card.dataset.alarmId;
    selectedId = id;
    const action = actionEl.dataset.action;
    if (action === "ack") acknowledge(id);
    else if (action === "announce") announce(id);
    else if (action === "resolve") openResolve(id);
    else if (action === "snapshot") showSnapshot(id);
    else if (action === "details") openDetail(id);
  }
}

function tick() {
  const now = ui.now();
  for (const [id, since] of fresh) if (Date.now() - since > FRESH_MS) fresh.delete(id);
  if (document.body.dataset.view !== "console") return;
  $("#clock").textContent = clockTime(new Date(now));
  updateAges($("#alarm-list"), now);
  if (page === "detail") updateAges($("#detail-root"), now);
  // "Last seen" ages on the device list move on without a message.
  if (page === "devices" && Math.floor(now / 1000) % 5 === 0) renderPage();
  if (connection?.status === "lost") renderConnection();
  if (!$("#links-banner").hidden) renderLinks();
  updateSoundMode();
}

async function boot() {
  loadLang();
  translateStatic(document);
  renderOutcomes();
  document.documentElement.lang = getLang();
  sound.onChange = renderSound;
  api.onUnauthorized = () => endSession("login.expired");
  $("#login-form").addEventListener("submit", onLogin);
  $("#resolve-form").addEventListener("submit", submitResolve);
  $("#detail-root").addEventListener("change", onDetailInput);
  $("#detail-root").addEventListener("input", onDetailInput);
  $("#detail-root").addEventListener("submit", (event) => {
    event.preventDefault();
    sendAnnouncement();
  });
  $("#history-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadHistoryPage();
  });
  $("#history-filters").addEventListener("change", (event) => {
    if (event.target.id === "history-outcome") renderHistoryPage();
    else loadHistoryPage();
  });
  $("#handover-hours").addEventListener("change", loadHandover);
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", () => {
      if (dialog.id === "resolve-dialog") resolvingId = null;
      // Focus left inside a closed dialog would swallow the next shortcut.
      if (dialog.contains(document.activeElement)) document.activeElement.blur();
    });
  }
  document.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);
  // Any later gesture may unblock sound too (a reload keeps the token but loses it).
  document.addEventListener("pointerdown", () => sound.arm(), { capture: true });
  document.addEventListener("keydown", () => sound.arm(), { capture: true });
  setInterval(tick, 1000);
  if (!api.token) {
    showLogin();
    return;
  }
  try {
    startConsole(await api.me());
  } catch (error) {
    // An unreachable hub with a saved token: show the console and let the socket retry.
    if (error instanceof ApiError && error.status === 0) startConsole(null);
    else showLogin(error.status === 401 ? "login.expired" : null);
  }
}

boot();
