// A site's devices, fetched when a page needs them (its map, its devices, an alarm's
// speakers): the hub's hello carries per-site counts only, never the fleet's 20,000
// devices (PROTOCOL 7.37). Fetched devices live in the console's picture, where the
// hub's `device` messages keep them current.

import { devicesAgree, expectDevices, mergeDevices } from "./state.js";

// The hub's largest page: a site has fewer devices than this, so one request is usual.
const PAGE = 1000;

export class SiteDevices {
  constructor(ctx, onLoaded) {
    this.ctx = ctx;
    this.onLoaded = onLoaded;
    this.loading = new Map(); // site id -> promise
  }

  // A new picture (a hello) may have other devices: fetch again when asked.
  reset() {
    this.loading.clear();
  }

  // The hub's counts of a fetched site moved: a status may have come between the
  // answer and the subscription to the site's devices; fetch the site again.
  siteChanged(site) {
    const state = this.ctx.state;
    if (!state.deviceSites.has(site.id) || devicesAgree(state, site)) return;
    state.deviceSites.delete(site.id);
    this.load(site.id);
  }

  loaded(siteId) {
    return this.ctx.state.deviceSites.has(siteId);
  }

  // Resolves once the site's devices are in the picture; a failure is retried next time.
  load(siteId) {
    if (this.loaded(siteId) || !this.ctx.state.sites.has(siteId)) return Promise.resolve();
    if (!this.loading.has(siteId)) {
      const state = this.ctx.state;
      expectDevices(state, siteId);
      this.ctx.connection?.subscribe();
      const pending = this.#fetch(siteId)
        .then((devices) => {
          if (this.ctx.state !== state) return;
          mergeDevices(state, siteId, devices);
          this.onLoaded(siteId);
        })
        .catch(() => state.devicesPending.delete(siteId))
        .finally(() => this.loading.delete(siteId));
      this.loading.set(siteId, pending);
    }
    return this.loading.get(siteId);
  }

  async #fetch(siteId) {
    const devices = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.ctx.api.siteDevices(siteId, offset, PAGE);
      devices.push(...page.devices);
      if (offset + PAGE >= page.total) return devices;
    }
  }
}
