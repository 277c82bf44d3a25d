// The wall (page 1): the open alarms as cards and the live event feed. It keeps
// which card is selected and which just arrived, and answers its keys: A the top
// unacknowledged alarm, N announce, R resolve, Enter the detail, arrows move.

import { addHistory, sortedAlarms, topUnacknowledged } from "./state.js";
import { renderAlarms, renderFeed, updateAges } from "./view.js";

// How long a new card is marked new.
const FRESH_MS = 10_000;
// The hello carries alarms but not their events: this many recent ones give each
// card its latest kind and snapshot, and the feed its history.
const RECENT_EVENTS = 200;

const $ = (selector) => document.querySelector(selector);

export class WallPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.selectedId = null;
    this.fresh = new Map(); // alarm id -> when it arrived (ms)
  }

  reset() {
    this.selectedId = null;
    this.fresh.clear();
  }

  isNew(alarmId) {
    return this.fresh.has(alarmId);
  }

  selected(alarms) {
    return alarms.find((alarm) => alarm.id === this.selectedId) ?? alarms[0] ?? null;
  }

  select(alarmId) {
    this.selectedId = alarmId;
  }

  // The cards are kept drawn behind other pages: coming back shows them at once.
  renderAlarms() {
    renderAlarms($("#alarm-list"), $("#alarm-count"), this.ctx.state, this.ctx.ui);
  }

  renderFeed() {
    renderFeed($("#feed-list"), this.ctx.state);
  }

  // result: what applyMessage changed; newAlarms already left out of a first hello.
  onMessage(message, result) {
    if (message.type === "hello") this.loadRecent();
    const now = Date.now();
    // A new intrusion into a known alarm's zone rings and flashes as a new alarm does;
    // a viewer's console stays silent.
    const raised = [...result.newAlarms, ...result.newIntrusions];
    for (const alarm of raised) this.fresh.set(alarm.id, now);
    const chimes = raised.some((alarm) => alarm.severity !== "critical");
    if (chimes && this.ctx.state.user?.role !== "viewer") this.ctx.sound.chime();
    if (result.parts.size) this.renderAlarms();
    if (result.parts.has("events") || result.parts.has("status")) this.renderFeed();
  }

  async loadRecent() {
    try {
      const events = await this.ctx.api.recentEvents(RECENT_EVENTS);
      addHistory(this.ctx.state, events);
      this.renderAlarms();
      this.renderFeed();
    } catch (error) {
      console.warn("recent events unavailable", error.message);
    }
  }

  onKey(event, key) {
    const { actions, state } = this.ctx;
    const alarms = sortedAlarms(state);
    const selected = this.selected(alarms);
    if (key === "enter" || key === "d") {
      // Enter on a focused button is that button's click, not "open".
      if (event.target.closest?.("button")) return false;
      if (selected) this.ctx.openDetail(selected.id);
    } else if (key === "a") {
      const top = topUnacknowledged(state);
      if (top && actions.canAct()) this.ctx.acknowledge(top.id);
    } else if (key === "n") {
      if (selected && actions.canAct()) actions.announce(selected.id);
    } else if (key === "r") {
      if (selected) actions.openResolve(selected.id);
    } else if (key === "arrowdown" || key === "j") {
      this.#moveSelection(1);
    } else if (key === "arrowup" || key === "k") {
      this.#moveSelection(-1);
    } else {
      return false;
    }
    return true;
  }

  // A click on a card selects it; on one of its buttons, does that.
  onClick(event) {
    const actionEl = event.target.closest("[data-action]");
    const card = event.target.closest("article[data-alarm-id]");
    if (!card) return;
    if (!actionEl) {
      this.selectedId = card.dataset.alarmId;
      this.renderAlarms();
      return;
    }
    if (actionEl.disabled) return;
    const id = card.dataset.alarmId;
    this.selectedId = id;
    const { actions, state } = this.ctx;
    const action = actionEl.dataset.action;
    if (action === "ack") this.ctx.acknowledge(id);
    else if (action === "announce") actions.announce(id);
    else if (action === "resolve") actions.openResolve(id);
    else if (action === "snapshot") this.ctx.snapshots.show(state.alarms.get(id)?.last_event_id);
    else if (action === "details") this.ctx.openDetail(id);
  }

  tick(now) {
    for (const [id, since] of this.fresh) if (Date.now() - since > FRESH_MS) this.fresh.delete(id);
    updateAges($("#alarm-list"), now);
  }

  #moveSelection(step) {
    const alarms = sortedAlarms(this.ctx.state);
    if (alarms.length === 0) return;
    const current = alarms.indexOf(this.selected(alarms));
    const next = alarms[Math.min(alarms.length - 1, Math.max(0, current + step))];
    this.selectedId = next.id;
    this.renderAlarms();
    document
      .querySelector(`article[data-alarm-id="${CSS.escape(next.id)}"]`)
      ?.scrollIntoView({ block: "nearest" });
  }
}
