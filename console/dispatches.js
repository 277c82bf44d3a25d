// Responders sent to an alarm (PROTOCOL 7.35, 7.38): each one's clock against the
// site's deadlines, the card's one line of who is coming, and the officer's picker
// for sending someone by hand.

import { t } from "./i18n.js";
import { formatAge } from "./state.js";
import { escape } from "./view.js";

export const DISPATCH_ENDED = new Set(["finished", "declined", "no_answer", "cancelled"]);
// When each state began.
const STEP_AT = {
  notified: "notified_at",
  accepted: "accepted_at",
  on_the_way: "departed_at",
  on_scene: "arrived_at",
};
// How far each has got, furthest first, for the card's one line.
const PROGRESS = ["on_scene", "on_the_way", "accepted", "notified"];
const CARD_RESPONDERS = 2;

function plusSeconds(ts, seconds) {
  const at = Date.parse(ts ?? "");
  return Number.isNaN(at) || !(seconds > 0) ? null : new Date(at + seconds * 1000).toISOString();
}

// Since when the dispatch is in its state, and what it is due to do by when: accept
// within the site's accept_s of the call, be on scene within arrive_s of accepting.
export function dispatchClock(dispatch, site) {
  const ended = DISPATCH_ENDED.has(dispatch.state);
  const since = ended ? dispatch.ended_at : (dispatch[STEP_AT[dispatch.state]] ?? dispatch.notified_at);
  const timers = site?.dispatch ?? {};
  let due = null;
  let deadline = null;
  if (dispatch.state === "notified") {
    due = "accept";
    deadline = plusSeconds(dispatch.notified_at, timers.accept_s);
  } else if (dispatch.state === "accepted" || dispatch.state === "on_the_way") {
    due = "arrive";
    deadline = plusSeconds(dispatch.accepted_at, timers.arrive_s);
  }
  // The hub marks a late arrival itself (overdue_at); the console also counts down.
  return { since: since ?? null, due, deadline, overdue: due === "arrive" && Boolean(dispatch.overdue_at) };
}

// A timer element; updateDispatchTimers fills it in every second. Compact on a card
// (the time in its state, and "late" once late), full in the detail (and the deadline
// counting down).
export function timerHtml(clock, compact) {
  if (!clock.since) return "";
  return `<span class="dispatch-timer" data-since="${escape(clock.since)}" data-due="${escape(
    clock.due ?? "",
  )}" data-deadline="${escape(clock.deadline ?? "")}" data-overdue="${clock.overdue ? "yes" : "no"}"${
    compact ? ' data-compact="yes"' : ""
  } title="${escape(t("dispatch.timer_hint"))}"></span>`;
}

export function updateDispatchTimers(root, now) {
  for (const el of root.querySelectorAll(".dispatch-timer[data-since]")) {
    const since = Date.parse(el.dataset.since);
    const deadline = Date.parse(el.dataset.deadline);
    const due = el.dataset.due;
    const late = Boolean(due) && (el.dataset.overdue === "yes" || (!Number.isNaN(deadline) && now > deadline));
    const parts = [Number.isNaN(since) ? "" : formatAge(now - since)];
    // Late in words, with a mark of its own: not by colour only.
    if (late) parts.push(t(el.dataset.compact === "yes" ? "dispatch.late_short" : `dispatch.late_${due}`));
    else if (!Number.isNaN(deadline) && el.dataset.compact !== "yes") {
      parts.push(t(`dispatch.due_${due}`, { left: formatAge(deadline - now) }));
    }
    el.textContent = parts.filter(Boolean).join(" · ");
    el.dataset.late = late ? "yes" : "no";
    el.closest("[data-dispatch-id]")?.classList.toggle("late", late);
  }
}

// The card's line: the responders still counted on, furthest along first, then those
// who ended (declined, no answer, finished); called-off ones are left out.
export function cardResponders(dispatches, site) {
  const rank = (d) => {
    const step = PROGRESS.indexOf(d.state);
    return step < 0 ? PROGRESS.length : step;
  };
  const shown = dispatches.filter((d) => d.state !== "cancelled").sort((a, b) => rank(a) - rank(b));
  return {
    list: shown.slice(0, CARD_RESPONDERS).map((d) => ({
      id: d.id,
      name: d.responder_name ?? d.responder,
      state: d.state,
      clock: dispatchClock(d, site),
    })),
    more: Math.max(0, shown.length - CARD_RESPONDERS),
  };
}

export function respondersLineHtml(responders) {
  const people = responders.list
    .map(
      (r) => `<span class="responder" data-dispatch-id="${escape(r.id)}" data-state="${escape(r.state)}">
        <span class="who" translate="no">${escape(r.name)}</span> · <span class="state">${escape(
          t(`dispatch.state.${r.state}`),
        )}</span> ${timerHtml(r.clock, true)}</span>`,
    )
    .join("");
  const more = responders.more
    ? `<span class="more">${escape(t("dispatch.more", { count: responders.more }))}</span>`
    : "";
  return `<p class="responders-line" title="${escape(t("dispatch.heading"))}">${people}${more}</p>`;
}

// The officer's picker: who is on call for the alarm's site first, level by level,
// then everyone else by name; those already sent to the alarm cannot be picked again.
export function pickerGroups(directory, siteId, sentIds) {
  const responders = new Map((directory?.responders ?? []).map((r) => [r.id, r]));
  const onCall = directory?.on_call?.[siteId] ?? {};
  const placed = new Set();
  const groups = [];
  for (const level of Object.keys(onCall).sort((a, b) => Number(a) - Number(b))) {
    const people = (onCall[level] ?? []).filter((id) => responders.has(id) && !placed.has(id));
    for (const id of people) placed.add(id);
    if (people.length) groups.push({ label: t("dispatch.pick_on_call", { level }), ids: people });
  }
  const others = [...responders.keys()]
    .filter((id) => !placed.has(id))
    .sort((a, b) => String(responders.get(a).name).localeCompare(String(responders.get(b).name)));
  if (others.length) groups.push({ label: t("dispatch.pick_others"), ids: others });
  return groups.map((group) => ({
    label: group.label,
    options: group.ids.map((id) => ({ id, name: responders.get(id).name ?? id, sent: sentIds.has(id) })),
  }));
}

// picked: the officer's choice so far, kept across redraws.
export function pickerHtml(groups, busy, picked) {
  if (groups.length === 0) return `<p class="muted">${escape(t("dispatch.pick_nobody"))}</p>`;
  const free = groups.flatMap((g) => g.options).filter((o) => !o.sent);
  const firstFree = (free.find((o) => o.id === picked) ?? free[0])?.id;
  if (!firstFree) return `<p class="muted">${escape(t("dispatch.pick_all_sent"))}</p>`;
  const options = groups
    .map(
      (group) => `<optgroup label="${escape(group.label)}">${group.options
        .map(
          (o) =>
            `<option value="${escape(o.id)}" translate="no"${o.sent ? " disabled" : ""}${
              o.id === firstFree ? " selected" : ""
            }>${escape(o.sent ? t("dispatch.pick_sent", { name: o.name }) : o.name)}</option>`,
        )
        .join("")}</optgroup>`,
    )
    .join("");
  return `<form id="dispatch-send" class="dispatch-send" novalidate>
      <label for="dispatch-pick">${escape(t("dispatch.pick_label"))}</label>
      <select id="dispatch-pick" name="responder">${options}</select>
      <button type="submit" id="dispatch-submit"${busy ? " disabled" : ""}>${escape(
        busy ? t("action.busy") : t("dispatch.send"),
      )}</button>
    </form>`;
}
