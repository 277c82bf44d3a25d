// When the console cannot vouch for the picture, it says so: the hub's own links lost
// (PROTOCOL 7.13: a red banner naming what and since when), or the console's own
// socket down. Either way the wall never shows the green "no open alarms".

import { getLang, t } from "./i18n.js";
import { formatAge, hubDeaf, linkDown, lostLinks } from "./state.js";
import { clockTime, escape, siteName } from "./view.js";

// The banner: one line per thing lost, with since when and for how long. While the
// console's own socket is down it does not know what the hub hears now: the
// connection banner speaks instead. Redrawn only when what is lost changes; the
// durations tick on their own, hidden from screen readers (the alert is not read
// out again every second).
export function renderLinksBanner(el, state, now, connected) {
  const lost = connected ? lostLinks(state) : [];
  const severe = lost.some((item) => item.severe);
  document.body.dataset.links = severe ? "lost" : lost.length ? "degraded" : "ok";
  el.hidden = lost.length === 0;
  const signature = JSON.stringify([getLang(), lost, state.sites.size]);
  if (el.dataset.signature === signature) {
    updateDurations(el, now);
    return;
  }
  el.dataset.signature = signature;
  if (lost.length === 0) {
    el.innerHTML = "";
    return;
  }
  el.className = `links-banner ${severe ? "links-lost" : "links-degraded"}`;
  let heading = t("links.degraded");
  if (linkDown(state, "broker")) heading = t("links.deaf");
  else if (severe) heading = t("links.partly_deaf");
  const items = lost
    .map((item) => {
      const what =
        item.kind === "edge"
          ? t(item.since ? "links.lost_edge" : "links.lost_edge_never", {
              site: siteName(state, item.site),
            })
          : lostLinkText(item.kind);
      const at = Date.parse(item.since ?? "");
      const edge = item.kind === "edge";
      const since = Number.isNaN(at)
        ? ""
        : `${escape(t(edge ? "links.last_heard" : "links.since", { time: clockTime(new Date(at)) }))}<span
            class="duration" aria-hidden="true" data-at="${at}" data-key="${edge ? "ago" : "for"}"></span>`;
      const site = item.site ? ` data-site="${escape(item.site)}"` : "";
      return `<li data-link="${escape(item.kind)}"${site}><span class="what">${escape(what)}</span>
        <span class="since">${since}</span></li>`;
    })
    .join("");
  el.innerHTML = `<p class="links-heading">${escape(heading)}</p><ul>${items}</ul>`;
  updateDurations(el, now);
}

function updateDurations(el, now) {
  for (const span of el.querySelectorAll(".duration[data-at]")) {
    const duration = formatAge(now - Number(span.dataset.at));
    span.textContent =
      span.dataset.key === "ago" ? t("links.ago", { duration }) : t("links.for", { duration });
  }
}

function lostLinkText(kind) {
  if (kind === "broker") return t("links.lost_broker");
  if (kind === "store") return t("links.lost_store");
  return t("links.lost_influx");
}

// What the wall says instead of "no open alarms" when it does not know, or null.
export function wallNotice(state, connection, helloSeen) {
  const status = connection?.status ?? "connecting";
  if (status !== "open" || !helloSeen) {
    const since = connection?.lostSince;
    if (!since) return { kind: "connecting", title: t("wall.connecting"), hint: "" };
    return {
      kind: "disconnected",
      title: t("wall.disconnected"),
      hint: t("wall.last_known", { time: clockTime(new Date(since)) }),
    };
  }
  if (hubDeaf(state)) {
    const last = state.links?.last_event_at;
    return {
      kind: "deaf",
      title: t("wall.not_receiving"),
      hint: last ? t("wall.last_event", { time: clockTime(new Date(last)) }) : t("wall.no_event"),
    };
  }
  return null;
}

// The wall's heading says it too while alarms are shown (they may be stale).
export function renderWallNotice(el, notice, hasAlarms) {
  const shown = Boolean(notice) && hasAlarms;
  el.hidden = !shown;
  el.textContent = shown ? [notice.title, notice.hint].filter(Boolean).join(" · ") : "";
}
