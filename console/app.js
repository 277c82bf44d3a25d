// The duty console: login, the live alarm picture, actions, keyboard, sound.

import { Api, ApiError } from "./api.js";
import { HubConnection } from "./connection.js";
import { getLang, loadLang, otherLang, setLang, t, translateStatic } from "./i18n.js";
import { AlertSound } from "./sound.js";
import {
  addHistory,
  applyAlarmResponse,
  applyMessage,
  createState,
  formatAge,
  needsAlarmSound,
  sortedAlarms,
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

function updateSoundMode() {
  const lostFor = connection?.lostSince ? Date.now() - connection.lostSince : 0;
  if (needsAlarmSound(state)) sound.setMode("alarm");
  else if (connection?.status === "lost" && lostFor > LOST_SOUND_AFTER_MS) sound.setMode("lost");
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
  showView("console");
  connection = new HubConnection(api, {
    getSince: () => state.lastSeq,
    onMessage,
    onStatus: () => {
      renderConnection();
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
  api.setToken(null);
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
  if (result.parts.has("alarms")) {
    pruneSnapshots();
    const open = state.alarms.size;
    document.title = open ? `(${open}) ${t("app.title")}` : t("app.title");
  }
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
}

function dropSnapshot(eventId) {
  const entry = snapshots.get(eventId);
  if (entry?.url) URL.revokeObjectURL(entry.url);
  snapshots.delete(eventId);
}

// Only the latest event of an active alarm shows its snapshot: free the others.
function pruneSnapshots() {
  const shown = new Set([...state.alarms.values()].map((alarm) => alarm.last_event_id));
  for (const eventId of [...snapshots.keys()]) if (!shown.has(eventId)) dropSnapshot(eventId);
}

// --- actions ---------------------------------------------------------------------

async function act(action, alarmId, call, doneKey) {
  const key = `${action}:${alarmId}`;
  if (busy.has(key)) return;
  busy.add(key);
  renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
  try {
    const result = await call();
    if (result && typeof result === "object") {
      if (action === "announce" && result.id && !state.announcements.has(result.id)) {
        state.announcements.set(result.id, result);
      } else if (action !== "announce") {
        applyAlarmResponse(state, result);
      }
    }
    toast(doneKey, {}, "ok");
    return true;
  } catch (error) {
    toast(...actionError(error), "error");
    return false;
  } finally {
    busy.delete(key);
    renderAlarms($("#alarm-list"), $("#alarm-count"), state, ui);
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
  const alarms = sortedAlarms(state);
  const selected = ui.selected(alarms);
  if (key === "a") {
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

function onClick(event) {
  const command = event.target.closest("[data-command]")?.dataset.command;
  if (command === "lang") switchLanguage();
  else if (command === "logout") endSession();
  else if (command === "resolve-cancel" || command === "snapshot-close") closeDialogs();
  // "arm-sound" needs nothing more: every click arms the sound below.

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
  }
}

function tick() {
  const now = ui.now();
  for (const [id, since] of fresh) if (Date.now() - since > FRESH_MS) fresh.delete(id);
  if (document.body.dataset.view !== "console") return;
  $("#clock").textContent = clockTime(new Date(now));
  updateAges($("#alarm-list"), now);
  if (connection?.status === "lost") renderConnection();
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
