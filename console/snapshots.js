// Event snapshots (JPEGs) loaded from the hub as object URLs, kept while an alarm
// card or the open detail shows them and freed after.

import { t } from "./i18n.js";

// The JPEG travels on its own topic (PROTOCOL 2.2) and may land after its event.
const RETRIES_MS = [1000, 2000, 4000, 8000];

export class Snapshots {
  // onLoaded: a snapshot arrived (or failed for good): the pages showing it redraw.
  constructor(api, onLoaded) {
    this.api = api;
    this.onLoaded = onLoaded;
    // event id -> {url} once loaded, {pending: true} while asked or waiting to retry,
    // {failed: true} after the last retry.
    this.entries = new Map();
  }

  // Asking for a snapshot the page has not seen starts loading it; the pages are
  // drawn again when it arrives. null: not (yet) available.
  url(eventId) {
    const known = this.entries.get(eventId);
    if (known === undefined) this.#load(eventId, 0);
    return known?.url ?? null;
  }

  failed(eventId) {
    return this.entries.get(eventId)?.failed === true;
  }

  // The hub holds this picture now: one that could not be loaded before is asked for again.
  announced(eventId) {
    if (this.failed(eventId)) this.#drop(eventId);
  }

  // Frees every snapshot but those of the given events.
  keepOnly(eventIds) {
    for (const eventId of [...this.entries.keys()]) if (!eventIds.has(eventId)) this.#drop(eventId);
  }

  clear() {
    this.keepOnly(new Set());
  }

  show(eventId) {
    const url = this.entries.get(eventId)?.url;
    if (!url) return;
    const large = document.querySelector("#snapshot-large");
    large.src = url;
    large.alt = t("alarm.snapshot");
    document.querySelector("#snapshot-dialog").showModal();
  }

  async #load(eventId, attempt) {
    this.entries.set(eventId, { pending: true });
    let entry;
    try {
      const blob = await this.api.snapshot(eventId);
      entry = blob instanceof Blob ? { url: URL.createObjectURL(blob) } : { failed: true };
    } catch (error) {
      if (error.status === 404 && attempt < RETRIES_MS.length) {
        setTimeout(() => {
          if (this.entries.has(eventId)) this.#load(eventId, attempt + 1);
        }, RETRIES_MS[attempt]);
        return;
      }
      console.warn("snapshot", eventId, error.message);
      entry = { failed: true };
    }
    if (!this.entries.has(eventId)) {
      // Logged out or the alarm went while loading.
      if (entry.url) URL.revokeObjectURL(entry.url);
      return;
    }
    this.entries.set(eventId, entry);
    this.onLoaded();
  }

  #drop(eventId) {
    const entry = this.entries.get(eventId);
    if (entry?.url) URL.revokeObjectURL(entry.url);
    this.entries.delete(eventId);
  }
}
