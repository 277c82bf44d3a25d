// The alarm detail (opened from any page, Esc goes back): the alarm also once
// resolved, its timeline, and the announce panel whose choices survive redraws.

import { getLang } from "./i18n.js";
import { defaultTargets, hubTimeline, renderDetail, siteSpeakers } from "./detail.js";
import { toast } from "./toasts.js";
import { updateAges } from "./view.js";

const $ = (selector) => document.querySelector(selector);

export class DetailPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.detail = null; // what is shown: see open()
    this.returnTo = "alarms";
    this.clips = null; // the hub's clips, asked for once per login
    this.ttsRefused = false;
    this.timelineLoading = null;
  }

  reset() {
    this.clips = null;
  }

  get alarmId() {
    return this.detail?.id ?? null;
  }

  // The hub speaks typed text (PROTOCOL 7.10) unless it has no speech engine; then it
  // refuses with not_supported (7.3), and the text input waits, marked "coming soon".
  ttsSupported() {
    return !this.ttsRefused;
  }

  // Events whose snapshots the timeline shows.
  shownEvents() {
    return (this.detail?.entries ?? []).map((entry) => entry.eventId).filter(Boolean);
  }

  bind() {
    const root = $("#detail-root");
    root.addEventListener("change", (event) => this.#onInput(event));
    root.addEventListener("input", (event) => this.#onInput(event));
    root.addEventListener("submit", (event) => {
      event.preventDefault();
      if (event.target.id === "dispatch-send") this.#sendResponder();
      else this.send();
    });
  }

  async open(alarmId) {
    const { ctx } = this;
    if (ctx.page !== "detail") this.returnTo = ctx.page;
    const known = ctx.state.alarms.get(alarmId) ?? null;
    this.detail = {
      id: alarmId,
      alarm: known,
      timeline: null,
      announcements: new Map(),
      clipId: null,
      clips: this.clips ?? [],
      text: "",
      voice: getLang() === "en" ? "en" : "cmn",
      targets: known ? defaultTargets(ctx.state, known) : new Set(),
      entries: [],
      dispatches: [],
      // Every responder and who is on call (GET /api/responders), for the picker.
      directory: null,
      pick: null,
      sending: false,
      error: null,
    };
    $("#detail-root").dataset.frame = "";
    ctx.showPage("detail");
    const mine = this.detail;
    try {
      if (!mine.alarm) {
        mine.alarm = await ctx.api.alarm(alarmId);
        mine.targets = defaultTargets(ctx.state, mine.alarm);
      }
    } catch (error) {
      mine.error = error;
      if (this.detail === mine) this.render();
      return;
    }
    if (this.detail !== mine) return;
    this.render();
    this.#loadSpeakers(mine);
    await Promise.all([
      this.#loadClips(),
      this.#reloadTimeline(),
      this.#loadAnnouncements(mine),
      this.#loadDispatches(mine),
      this.#loadDirectory(mine),
    ]);
  }

  // The site's speakers come on demand (PROTOCOL 7.37): the default targets once they do.
  async #loadSpeakers(mine) {
    await this.ctx.loadSiteDevices(mine.alarm.site);
    if (this.detail !== mine) return;
    if (mine.targets.size === 0) mine.targets = defaultTargets(this.ctx.state, mine.alarm);
    this.render();
  }

  // Leaving the page: nothing of it stays behind (its labels would miss a language switch).
  hide() {
    if (!this.detail) return;
    this.detail = null;
    $("#detail-root").innerHTML = "";
    $("#detail-root").dataset.frame = "";
  }

  back() {
    this.ctx.showPage(this.returnTo === "detail" ? "alarms" : this.returnTo);
  }

  render() {
    if (!this.detail) return;
    renderDetail($("#detail-root"), this.ctx.state, this.ctx.ui, this.detail);
    updateAges($("#detail-root"), this.ctx.ui.now());
  }

  tick(now) {
    updateAges($("#detail-root"), now);
  }

  onMessage(message) {
    const detail = this.detail;
    if (!detail) return;
    if (message.type === "alarm" && message.data.id === detail.id) {
      const countChanged = detail.alarm && detail.alarm.event_count !== message.data.event_count;
      const climbed = detail.alarm && detail.alarm.escalation_level !== message.data.escalation_level;
      const resolved = detail.alarm?.state !== "resolved" && message.data.state === "resolved";
      detail.alarm = message.data;
      if (countChanged || this.#followsHub(detail)) this.#reloadTimeline();
      // A level reached calls its responders: their dispatches are new. A resolve
      // withdraws the calls not yet sent (PROTOCOL 7.44).
      if (climbed || resolved) this.#loadDispatches(detail);
    } else if (message.type === "dispatch" && message.data.alarm_id === detail.id) {
      // A step keeps the messages already known (the socket does not repeat them).
      const known = detail.dispatches.find((d) => d.id === message.data.id);
      const updated = { calls: known?.calls ?? [], ...message.data };
      detail.dispatches = detail.dispatches.some((d) => d.id === updated.id)
        ? detail.dispatches.map((d) => (d.id === updated.id ? updated : d))
        : [...detail.dispatches, updated];
      if (this.#followsHub(detail)) this.#reloadTimeline();
      // A new one (sent by hand, or a level called): its messages, on which channel.
      if (!known) this.#loadDispatches(detail);
    } else if (message.type === "hello" && this.ctx.state.alarms.has(detail.id)) {
      detail.alarm = this.ctx.state.alarms.get(detail.id);
      this.#loadSpeakers(detail);
    }
  }

  // The hub's answer to an action, unless the socket already brought a newer version.
  actionAnswered(alarm) {
    const detail = this.detail;
    if (detail?.id === alarm.id && String(alarm.updated_at) >= String(detail.alarm?.updated_at)) {
      detail.alarm = alarm;
    }
  }

  onKey(event, key) {
    const { actions } = this.ctx;
    const alarm = this.detail?.alarm;
    if (key === "escape") this.back();
    else if (key === "a") {
      if (alarm?.state === "open" && actions.canAct()) this.ctx.acknowledge(alarm.id);
    } else if (key === "n") this.send();
    else if (key === "r") {
      if (alarm) actions.openResolve(alarm.id);
    } else return false;
    return true;
  }

  onClick(event) {
    const detail = this.detail;
    if (!detail?.alarm) return;
    const command = event.target.closest("[data-command]")?.dataset.command;
    if (command === "targets-zone") {
      detail.targets = defaultTargets(this.ctx.state, detail.alarm);
      this.render();
    } else if (command === "targets-all") {
      detail.targets = new Set(siteSpeakers(this.ctx.state, detail.alarm.site).map((s) => s.id));
      this.render();
    }
    const action = event.target.closest("[data-detail-action]");
    if (action && !action.disabled) {
      const what = action.dataset.detailAction;
      if (what === "ack") this.ctx.acknowledge(detail.id);
      else if (what === "resolve") this.ctx.actions.openResolve(detail.id);
      else if (what === "cancel-dispatch") this.#call(() => this.ctx.api.cancelDispatch(action.dataset.dispatchId));
      else if (what === "next-level") this.#call(() => this.ctx.api.callNextLevel(detail.id));
    }
  }

  send() {
    const detail = this.detail;
    if (!detail?.alarm || !this.ctx.actions.canAct()) return;
    const speakers = [...detail.targets].sort();
    if (speakers.length === 0) {
      toast("announce.pick_target", {}, "error");
      return;
    }
    const body = { alarm_id: detail.id, speakers };
    const text = detail.text.trim();
    // Typed text is spoken instead of the clip: the hub takes one or the other.
    if (this.ttsSupported() && text) {
      body.text = text;
      body.voice = detail.voice;
    } else if (detail.clipId) {
      body.clip_id = detail.clipId;
    }
    return this.ctx.actions.announceWith(detail.id, async () => {
      try {
        return await this.ctx.api.announceWith(body);
      } catch (error) {
        if (body.text && error.code === "not_supported") {
          this.ttsRefused = true;
          this.render();
        }
        throw error;
      }
    });
  }

  #onInput(event) {
    const detail = this.detail;
    if (!detail) return;
    const target = event.target;
    if (target.name === "target") {
      if (target.checked) detail.targets.add(target.value);
      else detail.targets.delete(target.value);
    } else if (target.id === "announce-clip") {
      detail.clipId = target.value || null;
    } else if (target.id === "announce-voice") {
      detail.voice = target.value;
    } else if (target.id === "dispatch-pick") {
      detail.pick = target.value;
      return; // kept for sending; the picker need not be drawn again
    } else if (target.id === "announce-text") {
      detail.text = target.value;
      return; // kept for sending; the form need not be drawn again
    } else {
      return;
    }
    this.render();
  }

  async #loadClips() {
    if (this.clips === null) {
      try {
        const answer = await this.ctx.api.clips();
        this.clips = Array.isArray(answer) ? answer : [];
      } catch (error) {
        console.warn("clips unavailable", error.message);
        return;
      }
    }
    const detail = this.detail;
    if (!detail?.alarm) return;
    detail.clips = this.clips;
    if (!detail.clipId) {
      const clips = this.clips;
      detail.clipId = (clips.find((clip) => clip.site === detail.alarm.site) ?? clips[0])?.id ?? null;
    }
    if (this.ctx.page === "detail") this.render();
  }

  // An officer's call on the responders; the socket brings what it changed.
  async #call(request) {
    try {
      await request();
    } catch (error) {
      toast("dispatch.failed", { reason: error.message }, "error");
    }
  }

  // Who may be sent, on call first: officers only, asked for once per alarm opened.
  async #loadDirectory(detail) {
    if (!this.ctx.actions.canAct()) return;
    try {
      detail.directory = await this.ctx.api.responders();
    } catch (error) {
      console.warn("responders", error.message);
      return;
    }
    if (this.detail === detail && this.ctx.page === "detail") this.render();
  }

  // The officer sends the picked responder; the socket brings the dispatch and the
  // timeline its entry.
  async #sendResponder() {
    const detail = this.detail;
    const responder = document.querySelector("#dispatch-pick")?.value;
    if (!detail?.alarm || !responder || detail.sending || !this.ctx.actions.canAct()) return;
    detail.sending = true;
    this.render();
    try {
      await this.ctx.api.sendDispatch(detail.id, responder);
      detail.pick = null;
    } catch (error) {
      toast("dispatch.failed", { reason: error.message }, "error");
    } finally {
      detail.sending = false;
      if (this.detail === detail) this.render();
    }
  }

  async #loadDispatches(detail) {
    try {
      const answer = await this.ctx.api.dispatches(detail.id);
      if (Array.isArray(answer)) detail.dispatches = answer;
    } catch (error) {
      console.warn("dispatches", error.message);
      return;
    }
    if (this.detail === detail && this.ctx.page === "detail") this.render();
  }

  // Announcements older than the hello's hour are fetched one by one.
  async #loadAnnouncements(detail) {
    const { api, state } = this.ctx;
    const missing = (detail.alarm.announcements ?? []).filter((id) => !state.announcements.has(id));
    const found = await Promise.all(missing.map((id) => api.announcement(id).catch(() => null)));
    for (const ann of found) if (ann?.id) detail.announcements.set(ann.id, ann);
    if (this.detail === detail && this.ctx.page === "detail") this.render();
  }

  // The hub's timeline (PROTOCOL 7.22). Until it comes, or if it cannot be had, the
  // console builds one from the alarm, the events and announcements it holds.
  async #fetchTimeline(alarm) {
    try {
      const entries = hubTimeline(await this.ctx.api.timeline(alarm.id));
      if (entries) return { source: "hub", entries };
    } catch (error) {
      console.warn("timeline", error.message);
    }
    return { source: "built", events: [] };
  }

  // Whether a change must be fetched into the timeline: it is the hub's, or its first
  // fetch is still on the way (and may answer from before the change).
  #followsHub(detail) {
    const firstOnTheWay = detail.timeline === null && this.timelineLoading !== null;
    return detail.timeline?.source === "hub" || firstOnTheWay;
  }

  // One fetch at a time; a burst of events asks for one more afterwards.
  async #reloadTimeline() {
    const detail = this.detail;
    if (!detail?.alarm) return;
    if (this.timelineLoading) {
      this.timelineLoading.again = true;
      return;
    }
    this.timelineLoading = { again: false };
    try {
      const timeline = await this.#fetchTimeline(detail.alarm);
      if (this.detail === detail) {
        detail.timeline = timeline;
        if (this.ctx.page === "detail") this.render();
      }
    } finally {
      const again = this.timelineLoading.again;
      this.timelineLoading = null;
      if (again && this.detail === detail) this.#reloadTimeline();
    }
  }
}
