// Devices and sites (page 3): the edges and devices of one site, or of every site of a
// small fleet, offline first, a page of rows at a time. A site's devices are fetched
// when it is shown (PROTOCOL 7.37).

import { t } from "./i18n.js";
import { SMALL_FLEET } from "./city.js";
import { renderDevices } from "./pages.js";
import { escape, siteName } from "./view.js";

const $ = (selector) => document.querySelector(selector);
// "Last seen" ages move on without a message: redrawn this often (s).
const AGES_EVERY_S = 5;
const ALL = "";
const PAGE_ROWS = 100;

export class DevicesPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.reset();
  }

  reset() {
    this.site = null; // null: the default (every site of a small fleet, else the first)
    this.offset = 0;
  }

  bind() {
    $("#devices-site").addEventListener("change", (event) => this.showSite(event.target.value));
  }

  // The city overview opens a site's devices here.
  showSite(siteId) {
    this.site = siteId;
    this.offset = 0;
    this.render();
  }

  #shownSites() {
    const ids = [...this.ctx.state.sites.keys()].sort();
    const small = ids.length <= SMALL_FLEET;
    const chosen = this.site ?? (small ? ALL : ids[0]);
    if (chosen === ALL && small) return { chosen, sites: ids };
    if (ids.includes(chosen)) return { chosen, sites: [chosen] };
    return { chosen: ids[0], sites: ids.slice(0, 1) };
  }

  render() {
    const { state, ui } = this.ctx;
    const { chosen, sites } = this.#shownSites();
    for (const site of sites) this.ctx.loadSiteDevices(site);
    const ids = [...state.sites.keys()].sort();
    const options = ids.length <= SMALL_FLEET ? [ALL, ...ids] : ids;
    const select = $("#devices-site");
    const html = options
      .map(
        (id) => `<option value="${escape(id)}"${id === chosen ? " selected" : ""}>${escape(
          id === ALL ? t("devices.all_sites") : siteName(state, id),
        )}</option>`,
      )
      .join("");
    if (select.drawn !== html) {
      select.drawn = html;
      select.innerHTML = html;
    }
    const total = [...state.devices.values()].filter((d) => sites.includes(d.site)).length;
    this.offset = Math.max(0, Math.min(this.offset, Math.floor(Math.max(0, total - 1) / PAGE_ROWS) * PAGE_ROWS));
    renderDevices($("#edges-list"), $("#devices-table"), $("#devices-count"), state, ui.now(), {
      sites,
      offset: this.offset,
      size: PAGE_ROWS,
    });
    const pages = Math.max(1, Math.ceil(total / PAGE_ROWS));
    $("#devices-paging").hidden = pages === 1;
    $("#devices-page-no").textContent = t("devices.page", {
      page: Math.floor(this.offset / PAGE_ROWS) + 1,
      pages,
    });
    $("#devices-prev").disabled = this.offset === 0;
    $("#devices-next").disabled = this.offset + PAGE_ROWS >= total;
  }

  onClick(event) {
    const command = event.target.closest("[data-command]")?.dataset.command;
    if (command === "devices-prev") this.#turn(-1);
    else if (command === "devices-next") this.#turn(1);
  }

  onKey(event, key) {
    if (key === "pagedown") this.#turn(1);
    else if (key === "pageup") this.#turn(-1);
    else return false;
    return true;
  }

  #turn(step) {
    this.offset = Math.max(0, this.offset + step * PAGE_ROWS);
    this.render();
  }

  tick(now) {
    if (Math.floor(now / 1000) % AGES_EVERY_S === 0) this.render();
  }
}
