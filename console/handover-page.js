// The shift handover (page 5): what happened in the last hours and what is still
// open, printable. The lists are loaded once, then kept up to date by the hub's pushes.

import { t } from "./i18n.js";
import { handoverHtml } from "./pages.js";
import { shiftSummary } from "./state.js";
import { escape } from "./view.js";

const ALARMS_LIMIT = 1000;
const HOUR_MS = 3_600_000;

const $ = (selector) => document.querySelector(selector);

export class HandoverPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null; // {from, byId}, {loading} or {error}
  }

  reset() {
    this.data = null;
  }

  show() {
    this.load();
  }

  bind() {
    $("#handover-hours").addEventListener("change", () => this.load());
  }

  onMessage(message) {
    if (this.data?.byId && message.type === "alarm") this.data.byId.set(message.data.id, message.data);
    // The console takes device messages of the sites it shows only: a site's counts
    // moving says one of its devices went offline or came back.
    if (this.data?.offline && message.type === "site") this.#reloadOffline(this.data);
    if (this.data?.offline && message.type === "device") {
      const others = this.data.offline.filter((device) => device.id !== message.data.id);
      this.data.offline = message.data.online === false ? [...others, message.data] : others;
    }
  }

  async #reloadOffline(data) {
    try {
      const offline = await this.ctx.api.offlineDevices();
      if (this.data !== data) return;
      data.offline = offline;
      if (this.ctx.page === "handover") this.render();
    } catch {
      // The list as it was: the next site message or a reload tries again.
    }
  }

  async load() {
    const { api, ui } = this.ctx;
    const hours = Number($("#handover-hours").value);
    const from = ui.now() - hours * HOUR_MS;
    this.data = { loading: true };
    this.render();
    try {
      // The offline devices of every site: the console holds only the sites it fetched.
      const [list, offline] = await Promise.all([
        api.alarms({ since: new Date(from).toISOString(), limit: ALARMS_LIMIT }),
        api.offlineDevices(),
      ]);
      this.data = { from, offline, byId: new Map(list.map((alarm) => [alarm.id, alarm])) };
    } catch (error) {
      this.data = { error: error.message };
    }
    if (this.ctx.page === "handover") this.render();
  }

  // Only alarms change a handover.
  render(messageType = null) {
    if (messageType !== null && messageType !== "alarm" && messageType !== "device") return;
    const { state, ui, helloSeen } = this.ctx;
    const root = $("#handover-root");
    const data = this.data;
    if (!data || data.loading) {
      root.innerHTML = `<p class="muted">${escape(t("handover.loading"))}</p>`;
    } else if (data.error) {
      root.innerHTML = `<p class="form-error">${escape(t("handover.failed", { detail: data.error }))}</p>`;
    } else {
      // The list as loaded, brought up to date by the alarms the hub pushed since.
      const merged = new Map(data.byId);
      for (const [id, alarm] of merged) {
        if (alarm.state !== "resolved" && helloSeen && !state.alarms.has(id)) merged.delete(id);
      }
      for (const alarm of state.alarms.values()) merged.set(alarm.id, alarm);
      const now = ui.now();
      const summary = shiftSummary([...merged.values()], data.from, now);
      root.innerHTML = handoverHtml(state, summary, now, data.offline);
    }
  }
}
