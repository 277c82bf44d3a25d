// The site map (page 2): every site's schematic and the side panel of the zone or
// device picked by click, Enter or Space.

import { renderMapDetail, renderMaps } from "./map.js";

const $ = (selector) => document.querySelector(selector);

export class MapPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.selection = null; // {kind: "zone" | "device", site, id}
  }

  reset() {
    this.selection = null;
  }

  render() {
    renderMaps($("#map-list"), this.ctx.state, this.selection);
    renderMapDetail($("#map-detail"), this.ctx.state, this.selection);
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
