// What an officer does to an alarm from any page: acknowledge, announce, resolve
// (with its dialog). One request at a time per action and alarm; the outcome is a
// toast, the hub's answer goes into the picture unless the socket brought a newer one.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";
import { applyAlarmResponse } from "./state.js";
import { toast } from "./toasts.js";
import { clockTime, escape, siteName, zoneName } from "./view.js";

export const OUTCOMES = ["persuaded_away", "rescued", "false_alarm", "patrol_sent", "other"];
const ACTING_ROLES = new Set(["officer", "supervisor", "admin"]);

const $ = (selector) => document.querySelector(selector);

export class Actions {
  // onChange(alarm | null): an action started or ended (with the hub's alarm, if it
  // answered with one): what shows busy buttons is drawn again.
  constructor(ctx, onChange) {
    this.ctx = ctx;
    this.onChange = onChange;
    this.busy = new Set(); // "action:alarmId"
    this.resolvingId = null;
  }

  canAct() {
    return ACTING_ROLES.has(this.ctx.state.user?.role);
  }

  busyWith(alarmId) {
    return [...this.busy].filter((key) => key.endsWith(`:${alarmId}`)).map((key) => key.split(":")[0]);
  }

  isBusy(action, alarmId) {
    return this.busy.has(`${action}:${alarmId}`);
  }

  reset() {
    this.busy.clear();
    this.closeDialogs();
  }

  async act(action, alarmId, call, doneKey) {
    const key = `${action}:${alarmId}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    this.onChange(null);
    let answered = null;
    try {
      const result = await call();
      if (result && typeof result === "object") {
        const state = this.ctx.state;
        if (action === "announce" && result.id && !state.announcements.has(result.id)) {
          state.announcements.set(result.id, result);
        } else if (action !== "announce") {
          applyAlarmResponse(state, result);
          answered = result;
        }
      }
      toast(doneKey, {}, "ok");
      return true;
    } catch (error) {
      toast(...actionError(error), "error");
      return false;
    } finally {
      this.busy.delete(key);
      this.onChange(answered);
    }
  }

  acknowledge(alarmId) {
    return this.act("ack", alarmId, () => this.ctx.api.ack(alarmId), "action.acked");
  }

  // The alarm's default announcement (its zone's speakers, the site's clip).
  announce(alarmId) {
    return this.act("announce", alarmId, () => this.ctx.api.announce(alarmId), "action.announced");
  }

  announceWith(alarmId, call) {
    return this.act("announce", alarmId, call, "action.announced");
  }

  // --- the resolve dialog ----------------------------------------------------------

  renderOutcomes() {
    $("#resolve-outcomes").innerHTML = OUTCOMES.map(
      (outcome, index) => `<label class="outcome">
      <input type="radio" name="outcome" value="${outcome}" />
      <kbd>${index + 1}</kbd> <span>${escape(t(`outcome.${outcome}`))}</span></label>`,
    ).join("");
  }

  openResolve(alarmId) {
    const state = this.ctx.state;
    const alarm = state.alarms.get(alarmId);
    if (!alarm || !this.canAct()) return;
    this.resolvingId = alarmId;
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

  // Digits 1-5 pick an outcome while the dialog is open.
  pickOutcome(digit) {
    const radio = $("#resolve-dialog").querySelectorAll("input[name=outcome]")[digit - 1];
    radio.checked = true;
    radio.focus();
  }

  async submitResolve(event) {
    event.preventDefault();
    const alarmId = this.resolvingId;
    const outcome = $("#resolve-form").querySelector("input[name=outcome]:checked")?.value;
    if (!outcome) {
      $("#resolve-error").hidden = false;
      $("#resolve-error").textContent = t("resolve.pick");
      return;
    }
    const note = $("#resolve-note").value.trim();
    $("#resolve-submit").disabled = true;
    const done = await this.act(
      "resolve",
      alarmId,
      () => this.ctx.api.resolve(alarmId, outcome, note),
      "action.resolved",
    );
    $("#resolve-submit").disabled = false;
    if (done) this.closeDialogs();
  }

  // Someone else resolved the alarm being resolved here: the dialog has nothing left to do.
  // The officer's own resolve, still waiting for its HTTP answer, is not someone else's:
  // the hub's WebSocket update often overtakes that answer.
  resolvedElsewhere(alarmIds) {
    const id = this.resolvingId;
    if (id && alarmIds.includes(id) && !this.isBusy("resolve", id)) {
      this.closeDialogs();
      toast("resolve.gone");
    }
  }

  closeDialogs() {
    this.resolvingId = null;
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
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
