// Devices and sites (page 3): every edge and device, offline first.

import { renderDevices } from "./pages.js";

const $ = (selector) => document.querySelector(selector);
// "Last seen" ages move on without a message: redrawn this often (s).
const AGES_EVERY_S = 5;

export class DevicesPage {
  constructor(ctx) {
    this.ctx = ctx;
  }

  render() {
    const { state, ui } = this.ctx;
    renderDevices($("#edges-list"), $("#devices-table"), $("#devices-count"), state, ui.now());
  }

  tick(now) {
    if (Math.floor(now / 1000) % AGES_EVERY_S === 0) this.render();
  }
}
