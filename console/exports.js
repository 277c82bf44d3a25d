// The hub's own timeline export of an alarm (PROTOCOL 7.22): JSON to save, or a
// printable page in the officer's language. The links name what to export; a click
// asks the hub for a short-lived signed link to it (PROTOCOL 7.16), so the token
// never goes into a URL.

import { getLang, t } from "./i18n.js";
import { escape } from "./view.js";

export function exportLinks(alarmId) {
  const base = `/api/alarms/${encodeURIComponent(alarmId)}/timeline`;
  const lang = getLang() === "en" ? "en" : "zh";
  return `<a class="button-link" data-export="json" href="${escape(base)}"
        download="timeline-${escape(alarmId)}.json">${escape(t("history.export_json"))}</a>
      <a class="button-link" data-export="html" href="${escape(`${base}?format=html&lang=${lang}`)}"
        target="_blank" rel="noopener">${escape(t("history.export_html"))}</a>`;
}

// An export link: the href names what to export; the browser loads a signed link
// to it instead (a download, or the printable page in a new tab).
export async function openExport(api, link) {
  const path = link.getAttribute("href");
  // Opened now, inside the click: a window opened after the await would be a popup.
  const tab = link.dataset.export === "html" ? open("", "_blank") : null;
  if (tab) tab.opener = null;
  try {
    const signed = await api.link(path);
    if (tab) {
      tab.location.href = signed;
      return;
    }
    const save = document.createElement("a");
    save.href = signed;
    save.download = link.getAttribute("download") ?? "";
    document.body.append(save);
    save.click();
    save.remove();
  } catch (error) {
    tab?.close();
    console.error("export", error);
  }
}

