// The city overview's picture: sites grouped along their grid path (street →
// community → grid), filtered and searched. Pure functions over the console's picture.

import { activeAlarmsIn, siteKnown } from "./state.js";

export const RISKS = ["blue", "yellow", "orange", "red"];
// Up to this many sites the pages show every site at once (a map each, every device,
// a card each on the wall); beyond, one site at a time and the city in summary.
export const SMALL_FLEET = 4;
export const CITY_FILTERS = ["all", "alarms", "unguarded", "raised"];

// The grid path is city/district/street/…/grid: the overview groups below the district.
export function groupPath(site) {
  const parts = String(site.grid ?? "").split("/").filter(Boolean);
  return parts.length > 2 ? parts.slice(2) : parts;
}

export function siteRisk(state, site) {
  if (!siteKnown(state, site.id)) return "unknown";
  return RISKS.includes(site.risk) ? site.risk : "blue";
}

export function siteFacts(state, site) {
  return {
    id: site.id,
    risk: siteRisk(state, site),
    alarms: activeAlarmsIn(state, site.id).length,
    unguarded: (site.unguarded ?? []).length,
    path: groupPath(site),
  };
}

function matches(site, facts, words, filter) {
  if (filter === "alarms" && facts.alarms === 0) return false;
  if (filter === "unguarded" && facts.unguarded === 0) return false;
  if (filter === "raised" && !["orange", "red", "unknown"].includes(facts.risk)) return false;
  const text = [site.id, site.name, site.name_en, site.grid].join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

// The sites shown, in the order drawn: grouped by their path, by id within a grid.
// Returns [{path: [street, community, grid], sites: [facts]}].
export function citySites(state, query, filter) {
  const words = String(query ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  const groups = new Map();
  for (const site of state.sites.values()) {
    const facts = siteFacts(state, site);
    if (!matches(site, facts, words, filter)) continue;
    const key = facts.path.join("/");
    if (!groups.has(key)) groups.set(key, { path: facts.path, sites: [] });
    groups.get(key).sites.push(facts);
  }
  const list = [...groups.values()].sort((a, b) => a.path.join("/").localeCompare(b.path.join("/")));
  for (const group of list) group.sites.sort((a, b) => a.id.localeCompare(b.id));
  return list;
}

// The newest intrusion: the active alarm whose latest entry into its zone is newest
// (its opening when the hub lists no entries).
export function newestIntrusion(state) {
  let newest = null;
  let newestAt = -Infinity;
  for (const alarm of state.alarms.values()) {
    const at = Date.parse(alarm.intrusions?.at(-1)?.raised_at ?? alarm.opened_at);
    if (at > newestAt || (at === newestAt && alarm.id > newest.id)) {
      newest = alarm;
      newestAt = at;
    }
  }
  return newest;
}
