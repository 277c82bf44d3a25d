// History (page 4): events per hour or day per site, and the resolved incidents,
// filtered by site, period and outcome.

import { OUTCOMES } from "./actions.js";
import { t } from "./i18n.js";
import { chartSvg, incidentsHtml } from "./pages.js";
import { alignBuckets, statsBuckets } from "./state.js";
import { escape, siteName } from "./view.js";

const INCIDENTS_LIMIT = 1000;
const HOUR_MS = 3_600_000;

const $ = (selector) => document.querySelector(selector);

export class HistoryPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null; // {series, interval, incidents}, {loading} or {error}
  }

  reset() {
    this.data = null;
  }

  // Shown: load what the filters ask for.
  show() {
    this.load();
  }

  // Any filter but the outcome asks the hub again; the outcome only filters the list.
  bind() {
    $("#history-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    $("#history-filters").addEventListener("change", (event) => {
      if (event.target.id === "history-outcome") this.render();
      else this.load();
    });
  }

  // Hub messages do not change a history: it is drawn again only when asked.
  render(messageType = null) {
    if (messageType !== null) return;
    this.#fillFilters();
    const data = this.data;
    const chart = $("#history-chart");
    const source = $("#history-source");
    if (!data || data.loading) {
      chart.innerHTML = `<p class="muted">${escape(t("history.loading"))}</p>`;
      source.textContent = "";
      return;
    }
    if (data.error) {
      chart.innerHTML = `<p class="form-error">${escape(t("history.failed", { detail: data.error }))}</p>`;
      source.textContent = "";
      return;
    }
    const state = this.ctx.state;
    source.textContent = t("history.source_stats");
    chart.innerHTML = chartSvg(state, data.series, data.interval);
    const outcome = $("#history-outcome").value;
    const incidents = data.incidents.filter((alarm) => !outcome || alarm.outcome === outcome);
    $("#incidents-count").textContent = t("alarms.count", { count: incidents.length });
    $("#incidents-table").innerHTML = incidentsHtml(state, incidents, this.ctx.ui.exportLinks);
  }

  async load() {
    const { api, state, ui } = this.ctx;
    this.#fillFilters();
    const site = $("#history-site").value;
    const interval = $("#history-interval").value;
    const hours = Number($("#history-range").value);
    const to = ui.now();
    const from = to - hours * HOUR_MS;
    const sites = site ? [site] : [...state.sites.keys()].sort();
    const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
    this.data = { loading: true };
    this.render();
    let series;
    try {
      // Days in the officer's time zone, so a day bar is a day on the wall clock.
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const answers = await Promise.all(
        sites.map((s) => api.eventStats({ site: s, interval, tz, ...range })),
      );
      // The hub counts; the console only lays its buckets on the chart's grid.
      series = answers.map((answer, index) => ({
        site: sites[index],
        total: Number(answer?.total) || 0,
        buckets: alignBuckets(statsBuckets(answer), interval, from, to),
      }));
    } catch (error) {
      this.data = { error: error.message };
      this.render();
      return;
    }
    let incidents = [];
    try {
      incidents = await api.alarms({ state: "resolved", site, since: range.from, limit: INCIDENTS_LIMIT });
    } catch (error) {
      console.warn("incidents", error.message);
    }
    this.data = {
      series,
      interval,
      incidents: incidents
        .filter((alarm) => Date.parse(alarm.resolved_at) >= from)
        .sort((a, b) => String(b.opened_at).localeCompare(String(a.opened_at))),
    };
    if (this.ctx.page === "history") this.render();
  }

  // The filters keep the officer's choice while their options are written again
  // (sites may come and go, the language may change).
  #fillFilters() {
    const state = this.ctx.state;
    const site = $("#history-site");
    const chosenSite = site.value;
    site.innerHTML = [`<option value="">${escape(t("history.all_sites"))}</option>`]
      .concat(
        [...state.sites.values()]
          .sort((a, b) => a.id.localeCompare(b.id))
          .map((s) => `<option value="${escape(s.id)}">${escape(siteName(state, s.id))}</option>`),
      )
      .join("");
    site.value = chosenSite;
    const outcome = $("#history-outcome");
    const chosenOutcome = outcome.value;
    outcome.innerHTML = [`<option value="">${escape(t("history.all_outcomes"))}</option>`]
      .concat(OUTCOMES.map((o) => `<option value="${o}">${escape(t(`outcome.${o}`))}</option>`))
      .join("");
    outcome.value = chosenOutcome;
  }
}
