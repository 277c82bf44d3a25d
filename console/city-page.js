// The city overview (page 6): every site grouped along the grid path, its risk in
// colour, word and shape, its open alarms and unguarded zones; typed words filter,
// arrows move, Enter opens the site's map.

import { citySites } from "./city.js";
import { t } from "./i18n.js";
import { alarmsLine } from "./map.js";
import { escape, siteName } from "./view.js";

const $ = (selector) => document.querySelector(selector);
// A shape per risk, so that colour is never the only sign.
export const RISK_SHAPES = { blue: "○", yellow: "△", orange: "◆", red: "■", unknown: "?" };

export class CityPage {
  constructor(ctx, openMap) {
    this.ctx = ctx;
    this.openMap = openMap;
    this.reset();
  }

  reset() {
    this.query = "";
    this.filter = "all";
    this.selected = null; // site id
  }

  bind() {
    const search = $("#city-search");
    search.addEventListener("input", () => {
      this.query = search.value;
      this.render();
    });
    search.addEventListener("keydown", (event) => {
      if (this.#move(event.key)) event.preventDefault();
      else if (event.key === "Escape") search.blur();
    });
    $("#city-filter").addEventListener("change", (event) => {
      this.filter = event.target.value;
      this.render();
    });
  }

  // Typing starts in the search box.
  show() {
    $("#city-search").focus();
  }

  #visible() {
    return citySites(this.ctx.state, this.query, this.filter).flatMap((group) => group.sites);
  }

  // Arrows move the selection over the sites shown, Enter opens its map.
  #move(key) {
    const sites = this.#visible();
    if (!sites.length) return false;
    const at = sites.findIndex((site) => site.id === this.selected);
    if (key === "ArrowDown" || key === "ArrowUp") {
      const step = key === "ArrowDown" ? 1 : -1;
      const next = at < 0 ? 0 : Math.max(0, Math.min(sites.length - 1, at + step));
      this.selected = sites[next].id;
      this.render();
      $(`#city-list [data-site="${CSS.escape(this.selected)}"]`)?.scrollIntoView({ block: "nearest" });
      return true;
    }
    if (key === "Enter") {
      this.openMap((at < 0 ? sites[0] : sites[at]).id);
      return true;
    }
    return false;
  }

  onKey(event) {
    return this.#move(event.key);
  }

  onClick(event) {
    if (event.target.closest('[data-command="open-city"]')) this.ctx.showPage("city");
    const row = event.target.closest("#city-list [data-site]");
    if (row) this.openMap(row.dataset.site);
  }

  render() {
    const { state } = this.ctx;
    const groups = citySites(state, this.query, this.filter);
    const shown = groups.flatMap((group) => group.sites);
    if (!shown.some((site) => site.id === this.selected)) this.selected = shown[0]?.id ?? null;
    $("#city-count").textContent = t("city.count", { shown: shown.length, total: state.sites.size });
    let previous = [];
    const html = groups
      .map((group) => {
        // A heading for each level of the path that changed from the group before.
        const depth = group.path.findIndex((part, i) => part !== previous[i]);
        previous = group.path;
        const headings = group.path
          .slice(depth < 0 ? group.path.length : depth)
          .map((part, i) => {
            const level = (depth < 0 ? group.path.length : depth) + i;
            return `<h3 class="city-level city-level-${Math.min(level, 2)}" translate="no">${escape(part)}</h3>`;
          })
          .join("");
        const rows = group.sites
          .map((site) => {
            const selected = site.id === this.selected;
            const alarms = site.alarms
              ? `<span class="city-alarms">${escape(t("city.alarms", { count: site.alarms }))}</span>`
              : `<span class="muted">${escape(alarmsLine(0, site.risk === "unknown"))}</span>`;
            const unguarded = site.unguarded
              ? `<span class="city-unguarded">${escape(t("city.unguarded", { count: site.unguarded }))}</span>`
              : "";
            return `<li class="city-site risk-border-${site.risk}${selected ? " selected" : ""}" role="listitem"
                data-site="${escape(site.id)}" data-risk="${site.risk}"${selected ? ' aria-current="true"' : ""}>
              <span class="risk risk-${site.risk}"><span class="risk-shape" aria-hidden="true">${RISK_SHAPES[site.risk]}</span>
                ${escape(t(`risk.${site.risk}`))}</span>
              <span class="name">${escape(siteName(state, site.id))}</span>
              ${alarms}${unguarded}</li>`;
          })
          .join("");
        return `${headings}<ul class="city-sites" role="list">${rows}</ul>`;
      })
      .join("");
    const root = $("#city-list");
    const body = html || `<p class="muted">${escape(t("city.none"))}</p>`;
    if (root.drawn !== body) {
      root.drawn = body;
      root.innerHTML = body;
    }
  }
}
