// The wall's site strip: a card per site for a small fleet; for a city, the sites
// counted by risk (word and shape with the colour), how many have open alarms or
// unguarded zones, and cards for the few that most need a look.

import { RISKS, SMALL_FLEET, siteFacts } from "./city.js";
import { t } from "./i18n.js";
import { RISK_SHAPES } from "./city-page.js";
import { edgeStatus } from "./state.js";
import { escape, renderStatus } from "./view.js";

// Cards beside the summary at 1920 px: the rest is on the city overview.
const STRIP_SITES = 4;
const ORDER = ["unknown", ...RISKS].reverse();

export function renderSiteStrip(root, state) {
  const ids = [...state.sites.keys()];
  if (ids.length <= SMALL_FLEET) {
    renderStatus(root, state);
    return;
  }
  const facts = ids.map((id) => siteFacts(state, state.sites.get(id)));
  const rank = (f) => ORDER.indexOf(f.risk);
  const attention = facts
    .filter((f) => f.risk !== "blue" || f.alarms > 0 || edgeStatus(state, f.id) !== "online")
    .sort((a, b) => rank(a) - rank(b) || b.alarms - a.alarms || a.id.localeCompare(b.id));
  const counts = Object.fromEntries([...RISKS, "unknown"].map((risk) => [risk, 0]));
  for (const f of facts) counts[f.risk] += 1;
  const chips = ORDER.filter((risk) => counts[risk] > 0)
    .map(
      (risk) => `<span class="risk risk-${risk}" data-risk="${risk}"><span class="risk-shape" aria-hidden="true">${RISK_SHAPES[risk]}</span>
        ${escape(t(`risk.${risk}`))} <b>${counts[risk]}</b></span>`,
    )
    .join("");
  const withAlarms = facts.filter((f) => f.alarms > 0).length;
  const unguarded = facts.filter((f) => f.unguarded > 0).length;
  const more = attention.length - Math.min(attention.length, STRIP_SITES);
  root.innerHTML = `<div class="city-summary">
      <div class="site-title"><span class="name">${escape(t("city.sites", { count: ids.length }))}</span>
        <button type="button" data-command="open-city"><kbd>6</kbd> ${escape(t("nav.city"))}</button></div>
      <div class="city-chips">${chips}</div>
      <div class="site-line"><span>${escape(t("city.sites_alarms", { count: withAlarms }))}</span>
        <span>${escape(t("city.sites_unguarded", { count: unguarded }))}</span>
        ${more > 0 ? `<span class="muted">${escape(t("city.more", { count: more }))}</span>` : ""}</div>
    </div><div class="city-strip-sites"></div>`;
  renderStatus(
    root.querySelector(".city-strip-sites"),
    state,
    attention.slice(0, STRIP_SITES).map((f) => f.id),
  );
}
