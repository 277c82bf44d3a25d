// The site map (page 2): the schematic of every site of a small fleet, or of one site
// of a city (picked here or on the city overview), and the side panel of the zone or
// device picked by click, Enter or Space. A site's devices are fetched when it is drawn.

import { renderMapDetail, renderMaps } from "./map.js";
import { SMALL_FLEET } from "./city.js";
import { escape, siteName } from "./view.js";

const $ = (selector) => document.querySelector(selector);

export class MapPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.reset();
  }

  reset() {
    this.selection = null; // {kind: "zone" | "device", site, id}
    this.site = null; // the site drawn in a city; null: the first
  }

  bind() {
    $("#map-site").addEventListener("change", (event) => this.showSite(event.target.value));
  }

  showSite(siteId) {
    this.site = siteId;
    if (this.selection?.site !== siteId) this.selection = null;
    this.render();
  }

  #shownSites() {
    const ids = [...this.ctx.state.sites.keys()].sort();
    if (ids.length <= SMALL_FLEET) return ids;
    return [ids.includes(this.site) ? this.site : ids[0]];
  }

  render() {
    const { state } = this.ctx;
    const shown = this.#shownSites();
    for (const site of shown) this.ctx.loadSiteDevices(site);
    const ids = [...state.sites.keys()].sort();
    const bar = $("#map-bar");
    bar.hidden = ids.length <= SMALL_FLEET;
    if (!bar.hidden) {
      const select = $("#map-site");
      const html = ids
        .map(
          (id) => `<option value="${escape(id)}"${id === shown[0] ? " selected" : ""}>${escape(
            siteName(state, id),
          )}</option>`,
        )
        .join("");
      if (select.drawn !== html) {
        select.drawn = html;
        select.innerHTML = html;
      }
    }
    renderMaps($("#map-list"), state, this.selection, shown);
    renderMapDetail($("#map-detail"), state, this.selection);
  }

  onKey(event, key) {
    if (key !== "enter" && key !== " ") return false;
    const item = event.target.closest?.("[data-map-kind]");
    if (!item) return false;
    this.#select(item);
    return true;
  }

  onClick(event) {
    const item = event.target.closest("[data-map-kind]");
    if (item) this.#select(item);
  }

  #select(item) {
    const kind = item.dataset.mapKind;
    const site = item.dataset.site;
    const id = kind === "zone" ? item.dataset.zone : item.dataset.device;
    this.selection = { kind, site, id };
    this.render();
    // The map was redrawn: keep the keyboard where it was.
    const selector = kind === "zone"
      ? `[data-map-kind="zone"][data-site="${CSS.escape(site)}"][data-zone="${CSS.escape(id)}"]`
      : `[data-map-kind="device"][data-device="${CSS.escape(id)}"]`;
    document.querySelector(selector)?.focus();
  }
}
