// What a screen reader hears of the wall: each new alarm, and each new intrusion into
// one, read once from a live region (the cards are redrawn, so a live region on them
// would repeat itself).
import { t } from "./i18n.js";
import { siteName, zoneName } from "./view.js";

// Lines kept in the live region.
const ANNOUNCED_KEPT = 5;

const region = () => document.querySelector("#alarm-announcer");

export function announceAlarms(state, alarms, key) {
  const live = region();
  for (const alarm of alarms) {
    const line = document.createElement("p");
    line.textContent = t(key, {
      severity: t(`severity.${alarm.severity}`),
      site: siteName(state, alarm.site),
      zone: zoneName(state, alarm.site, alarm.zone),
    });
    live.append(line);
  }
  while (live.children.length > ANNOUNCED_KEPT) live.firstElementChild.remove();
}

// Lines already read out are not read again in another language.
export function clearAnnounced() {
  region().replaceChildren();
}
