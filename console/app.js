// The duty console: wires the pages to the hub. Each page (wall, map, devices,
// history, handover, detail) keeps its own state and keys in its own module; this
// one holds what they share (the hub's picture, the socket, the current page),
// routes hub messages, clicks and keys to them, and starts and ends the session.

import { Actions } from "./actions.js";
import { Api, ApiError } from "./api.js";
import { HubConnection } from "./connection.js";
import { CityPage } from "./city-page.js";
import { newestIntrusion } from "./city.js";
import { DetailPage } from "./detail-page.js";
import { DevicesPage } from "./devices-page.js";
import { exportLinks, openExport } from "./exports.js";
import { HandoverPage } from "./handover-page.js";
import {
  renderConnection,
  renderLinks,
  renderNav,
  renderSound,
  renderTitle,
  renderUser,
  updateSoundMode,
} from "./header.js";
import { HistoryPage } from "./history-page.js";
import { getLang, loadLang, otherLang, setLang, t, translateStatic } from "./i18n.js";
import { wallNotice } from "./links.js";
import { bindLogin, retranslateLogin, showLogin, showView } from "./login.js";
import { MapPage } from "./map-page.js";
import { SiteDevices } from "./site-devices.js";
import { Snapshots } from "./snapshots.js";
import { AlertSound } from "./sound.js";
import { applyMessage, createState, topUnacknowledged } from "./state.js";
import { retranslateToasts } from "./toasts.js";
import { renderSiteStrip } from "./city-strip.js";
import { announceAlarms, clearAnnounced } from "./screen-reader.js";
import { clockTime } from "./view.js";
import { WallPage } from "./wall-page.js";

// The tabs in the order of their keys 1 to 6; the detail has no key of its own.
const TABS = ["alarms", "map", "devices", "history", "handover", "city"];

const $ = (selector) => document.querySelector(selector);

// What the pages share. `state` and `connection` are replaced at each login, so
// pages read them from here each time instead of keeping them.
const ctx = {
  api: new Api(),
  sound: new AlertSound(),
  state: createState(),
  connection: null,
  helloSeen: false,
  page: "alarms",
  showPage,
  openDetail: (alarmId) => detail.open(alarmId),
  acknowledge(alarmId) {
    wall.select(alarmId);
    return actions.acknowledge(alarmId);
  },
};
const actions = new Actions(ctx, onActionChange);
// A site's devices, fetched for the page that needs them; the page redraws once they come.
const siteDevices = new SiteDevices(ctx, () => renderPage());
ctx.loadSiteDevices = (siteId) => siteDevices.load(siteId);
const snapshots = new Snapshots(ctx.api, () => {
  wall.renderAlarms();
  if (ctx.page === "detail") renderPage();
});
const wall = new WallPage(ctx);
const detail = new DetailPage(ctx);
const historyPage = new HistoryPage(ctx);
const mapPage = new MapPage(ctx);
const devicesPage = new DevicesPage(ctx);
const cityPage = new CityPage(ctx, (siteId) => {
  mapPage.showSite(siteId);
  showPage("map");
});
const handoverPage = new HandoverPage(ctx);
// A page may have: reset() at login; show() when it becomes the current page and
// hide() when it stops being it; render(messageType) while current (messageType null:
// asked by the officer); onKey(event, key) while current, saying whether it took the
// key; tick(now) every second while current; and, whichever page is current,
// onMessage(message, result) for every hub message applied and onClick(event).
const pages = {
  alarms: wall,
  map: mapPage,
  devices: devicesPage,
  history: historyPage,
  handover: handoverPage,
  city: cityPage,
  detail,
};
// What the renderers ask of the console beyond the picture.
ctx.ui = {
  now: () => ctx.api.now(),
  canAct: () => actions.canAct(),
  isNew: (alarmId) => wall.isNew(alarmId),
  busyActions: (alarmId) => actions.busyWith(alarmId),
  selected: (alarms) => wall.selected(alarms),
  snapshotUrl: (eventId) => snapshots.url(eventId),
  snapshotFailed: (eventId) => snapshots.failed(eventId),
  exportLinks,
  ttsSupported: () => detail.ttsSupported(),
  // What the wall says when it cannot vouch for "no open alarms" (null: it can).
  wallNotice: () => wallNotice(ctx.state, ctx.connection, ctx.helloSeen),
};
ctx.actions = actions;
ctx.snapshots = snapshots;

const inConsole = () => document.body.dataset.view === "console";

// --- drawing -----------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = getLang();
  translateStatic(document);
  actions.renderOutcomes();
  retranslateToasts();
  retranslateLogin();
  clearAnnounced();
  renderAll();
  // Hidden pages keep labels too (aria-label, titles): redraw them in the new language.
  if (inConsole()) {
    for (const name of ["map", "devices", "history", "handover", "city"]) pages[name].render();
  }
}

function renderAll() {
  if (!inConsole()) {
    document.title = t("app.title");
    return;
  }
  const { state } = ctx;
  // The clock at once, not a second later at the first tick: a wall never shows it blank.
  $("#clock").textContent = clockTime(new Date(ctx.api.now()));
  renderUser(state);
  renderSiteStrip($("#status-strip"), state);
  wall.renderAlarms();
  wall.renderFeed();
  renderSound(ctx);
  renderConnection(ctx.connection);
  renderLinks(ctx);
  renderNav(ctx, detail.alarmId);
  renderPage();
  renderTitle(state);
}

// messageType: what brought the redraw (null: the officer), for pages that only
// change on some messages.
function renderPage(messageType = null) {
  if (inConsole()) pages[ctx.page].render?.(messageType);
}

function showPage(name) {
  if (name !== ctx.page) pages[ctx.page].hide?.();
  ctx.page = name;
  document.body.dataset.page = name;
  $("#workspace").hidden = name !== "alarms";
  for (const other of ["map", "detail", "devices", "history", "handover", "city"]) {
    $(`#${other}-page`).hidden = name !== other;
  }
  for (const el of document.querySelectorAll("#shortcuts [data-for]")) {
    el.hidden = el.dataset.for !== name;
  }
  renderNav(ctx, detail.alarmId);
  renderPage();
  pages[name].show?.();
}

function onActionChange(alarm) {
  if (alarm) detail.actionAnswered(alarm);
  renderNav(ctx, detail.alarmId);
  wall.renderAlarms();
  if (ctx.page === "detail") renderPage();
  updateSoundMode(ctx);
}

// --- the session -------------------------------------------------------------------

function startConsole(user) {
  stopConsole();
  ctx.state = createState();
  ctx.state.user = user;
  ctx.helloSeen = false;
  for (const page of Object.values(pages)) page.reset?.();
  showView("console");
  showPage("alarms");
  const connection = new HubConnection(ctx.api, {
    getSince: () => ctx.state.lastSeq,
    getDeviceSites: () => [...ctx.state.deviceSites, ...ctx.state.devicesPending.keys()],
    onMessage,
    onStatus: () => {
      ctx.state.hubReachable = connection.status === "open";
      renderConnection(connection);
      // The wall and the sites: known again, or only as last known.
      renderSiteStrip($("#status-strip"), ctx.state);
      renderPage();
      wall.renderAlarms();
      renderLinks(ctx);
      updateSoundMode(ctx);
    },
    onAuthFailure: () => endSession("login.expired"),
  });
  ctx.connection = connection;
  connection.start();
  renderAll();
}

function stopConsole() {
  ctx.connection?.stop();
  ctx.connection = null;
  ctx.sound.setMode("idle");
  snapshots.clear();
  wall.reset();
  actions.reset();
}

function endSession(messageKey = null) {
  if (document.body.dataset.view === "login") return;
  stopConsole();
  // Ends the session on the hub too (its tokens stop working), then forgets them here.
  ctx.api.logout();
  ctx.state = createState();
  showLogin(messageKey);
}

// --- hub messages ------------------------------------------------------------------

function onMessage(message) {
  const { state } = ctx;
  const result = applyMessage(state, message);
  if (!result.applied) return;
  if (message.type === "hello") {
    siteDevices.reset();
    // What was already open on login does not chime.
    if (!ctx.helloSeen) {
      result.newAlarms.length = 0;
      result.newIntrusions.length = 0;
    }
    ctx.helloSeen = true;
  }
  if (result.snapshot) snapshots.announced(result.snapshot);
  announceAlarms(state, result.newAlarms, "alarm.announce_new");
  announceAlarms(state, result.newIntrusions, "alarm.announce_intrusion");
  actions.resolvedElsewhere(result.resolved);
  if (result.parts.has("status") || result.parts.has("user")) {
    renderUser(state);
    renderSiteStrip($("#status-strip"), state);
  }
  if (message.type === "site" && state.sites.has(message.data.id)) {
    siteDevices.siteChanged(state.sites.get(message.data.id));
  }
  for (const page of Object.values(pages)) page.onMessage?.(message, result);
  // A device of a site no page shows changes nothing drawn but the handover's faults:
  // a city's heartbeats bring hundreds a second.
  if (message.type === "device" && !result.parts.has("devices") && ctx.page !== "handover") return;
  if (result.parts.has("links") || result.parts.has("alarms")) renderLinks(ctx);
  if (result.parts.has("alarms")) {
    // Only the latest event of an active alarm, and the detail's, show a snapshot.
    const shown = new Set([...state.alarms.values()].map((alarm) => alarm.last_event_id));
    for (const eventId of detail.shownEvents()) shown.add(eventId);
    snapshots.keepOnly(shown);
    renderTitle(state);
  }
  renderNav(ctx, detail.alarmId);
  if (ctx.page !== "alarms") renderPage(message.type);
  updateSoundMode(ctx);
}

// --- input -------------------------------------------------------------------------

function onKey(event) {
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  const typing = event.target.closest?.(
    "textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox])",
  );
  const dialog = document.querySelector("dialog[open]");
  if (dialog?.id === "resolve-dialog" && !typing && /^[1-5]$/.test(event.key)) {
    actions.pickOutcome(Number(event.key));
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
  if (!inConsole()) return;
  if (/^[1-6]$/.test(key)) {
    showPage(TABS[Number(key) - 1]);
    event.preventDefault();
    return;
  }
  if (key === "i") {
    // From any page, the newest intrusion: its detail lists the site's speakers.
    const newest = newestIntrusion(ctx.state);
    if (newest) detail.open(newest.id);
    event.preventDefault();
    return;
  }
  if (ctx.page !== "alarms" && ctx.page !== "detail" && key === "a") {
    // Away from the wall and a detail, A takes the top unacknowledged alarm (the callout's).
    const top = topUnacknowledged(ctx.state);
    if (top && actions.canAct()) ctx.acknowledge(top.id);
    event.preventDefault();
    return;
  }
  if (pages[ctx.page].onKey?.(event, key)) event.preventDefault();
}

function onClick(event) {
  const exportLink = event.target.closest("a[data-export]");
  if (exportLink) {
    event.preventDefault();
    openExport(ctx.api, exportLink);
    return;
  }
  const commandEl = event.target.closest("[data-command]");
  const command = commandEl?.dataset.command;
  const calloutId = () => $("#alarm-callout").dataset.alarmId;
  if (command === "lang") switchLanguage();
  else if (command === "logout") endSession();
  else if (command === "resolve-cancel" || command === "snapshot-close") actions.closeDialogs();
  else if (command === "open-detail") detail.open(commandEl.dataset.alarmId);
  else if (command === "detail-back") detail.back();
  else if (command === "snapshot-event") snapshots.show(commandEl.dataset.eventId);
  else if (command === "handover-refresh") handoverPage.load();
  else if (command === "print") print();
  else if (command === "callout-open") detail.open(calloutId());
  else if (command === "callout-ack" && actions.canAct()) ctx.acknowledge(calloutId());
  // "arm-sound" needs nothing more: every click arms the sound (boot).
  const tab = event.target.closest("#pages [data-page]");
  if (tab) showPage(tab.dataset.page);
  for (const page of Object.values(pages)) page.onClick?.(event);
}

function switchLanguage() {
  setLang(otherLang());
  applyLanguage();
}

function tick() {
  const now = ctx.api.now();
  if (!inConsole()) return;
  $("#clock").textContent = clockTime(new Date(now));
  wall.tick(now);
  if (ctx.page !== "alarms") pages[ctx.page].tick?.(now);
  if (ctx.connection?.status === "lost") renderConnection(ctx.connection);
  if (!$("#links-banner").hidden) renderLinks(ctx);
  updateSoundMode(ctx);
}

async function boot() {
  loadLang();
  translateStatic(document);
  actions.renderOutcomes();
  document.documentElement.lang = getLang();
  ctx.sound.onChange = () => renderSound(ctx);
  ctx.api.onUnauthorized = () => endSession("login.expired");
  bindLogin(ctx.api, ctx.sound, startConsole);
  $("#resolve-form").addEventListener("submit", (event) => actions.submitResolve(event));
  detail.bind();
  historyPage.bind();
  handoverPage.bind();
  mapPage.bind();
  devicesPage.bind();
  cityPage.bind();
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", () => {
      if (dialog.id === "resolve-dialog") actions.resolvingId = null;
      // Focus left inside a closed dialog would swallow the next shortcut.
      if (dialog.contains(document.activeElement)) document.activeElement.blur();
    });
  }
  document.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);
  // Any later gesture may unblock sound too (a reload keeps the token but loses it).
  document.addEventListener("pointerdown", () => ctx.sound.arm(), { capture: true });
  document.addEventListener("keydown", () => ctx.sound.arm(), { capture: true });
  setInterval(tick, 1000);
  if (!ctx.api.token) {
    showLogin();
    return;
  }
  try {
    startConsole(await ctx.api.me());
  } catch (error) {
    // An unreachable hub with a saved token: show the console and let the socket retry.
    if (error instanceof ApiError && error.status === 0) startConsole(null);
    else showLogin(error.status === 401 ? "login.expired" : null);
  }
}

boot();
