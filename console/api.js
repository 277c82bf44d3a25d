// The hub's REST API (PROTOCOL 4.2), with the bearer token kept in sessionStorage:
// it survives a reload of the wall screen but not closing the browser.

const TOKEN_KEY = "riverguard.token";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

// Query string of the filters that are set.
function query(filters) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  return params.toString();
}

export class Api {
  constructor(base = "", storage = globalThis.sessionStorage) {
    this.base = base;
    this.storage = storage;
    this.token = storage.getItem(TOKEN_KEY);
    // Hub clock minus ours, from the Date header: ages count from the hub's times.
    this.clockOffsetMs = 0;
    this.onUnauthorized = () => {};
  }

  setToken(token) {
    this.token = token;
    if (token) this.storage.setItem(TOKEN_KEY, token);
    else this.storage.removeItem(TOKEN_KEY);
  }

  now() {
    return Date.now() + this.clockOffsetMs;
  }

  async login(username, password) {
    const body = new URLSearchParams({ username, password, grant_type: "password" });
    const response = await this.#fetch("POST", "/api/auth/token", body, false);
    const data = await response.json();
    this.setToken(data.access_token);
    return data;
  }

  async request(method, path, body = undefined) {
    const response = await this.#fetch(method, path, body, true);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") ?? "";
    return type.includes("json") ? response.json() : response.blob();
  }

  me() {
    return this.request("GET", "/api/me");
  }

  ack(alarmId) {
    return this.request("POST", `/api/alarms/${encodeURIComponent(alarmId)}/ack`);
  }

  resolve(alarmId, outcome, note) {
    return this.request("POST", `/api/alarms/${encodeURIComponent(alarmId)}/resolve`, {
      outcome,
      note,
    });
  }

  announce(alarmId) {
    return this.request("POST", "/api/announcements", { alarm_id: alarmId });
  }

  announceWith(body) {
    return this.request("POST", "/api/announcements", body);
  }

  alarm(alarmId) {
    return this.request("GET", `/api/alarms/${encodeURIComponent(alarmId)}`);
  }

  alarms(filters = {}) {
    return this.request("GET", `/api/alarms?${query(filters)}`);
  }

  timeline(alarmId) {
    return this.request("GET", `/api/alarms/${encodeURIComponent(alarmId)}/timeline`);
  }

  events(filters = {}) {
    return this.request("GET", `/api/events?${query(filters)}`);
  }

  eventStats(filters = {}) {
    return this.request("GET", `/api/stats/events?${query(filters)}`);
  }

  announcement(announcementId) {
    return this.request("GET", `/api/announcements/${encodeURIComponent(announcementId)}`);
  }

  clips() {
    return this.request("GET", "/api/clips");
  }

  recentEvents(limit = 100) {
    return this.request("GET", `/api/events?limit=${limit}`);
  }

  // An <img> cannot send the bearer header, so snapshots come as blobs.
  snapshot(eventId) {
    return this.request("GET", `/api/events/${encodeURIComponent(eventId)}/snapshot`);
  }

  wsUrl(since) {
    const url = new URL("/api/ws", this.base || location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.token ?? "");
    // Subscribed from the first message, so a resumed socket replays missed events too.
    url.searchParams.set("events", "*");
    // Every frame an array of messages: in a storm one frame carries a whole batch.
    url.searchParams.set("batch", "1");
    if (since !== null && since !== undefined) url.searchParams.set("since", String(since));
    return url.toString();
  }

  async #fetch(method, path, body, authenticated) {
    const headers = { Accept: "application/json" };
    if (authenticated && this.token) headers.Authorization = `Bearer ${this.token}`;
    let payload = body;
    if (body !== undefined && !(body instanceof URLSearchParams)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.base + path, { method, headers, body: payload });
    } catch (error) {
      throw new ApiError(0, "unreachable", String(error));
    }
    this.#trackClock(response);
    if (!response.ok) {
      let code = `http_${response.status}`;
      let detail = response.statusText;
      try {
        const error = await response.json();
        code = error.error ?? code;
        detail = typeof error.detail === "string" ? error.detail : JSON.stringify(error.detail);
      } catch {
        // Not the hub's JSON error (a proxy's page, say): keep the status text.
      }
      if (response.status === 401 && authenticated) this.onUnauthorized();
      throw new ApiError(response.status, code, detail);
    }
    return response;
  }

  #trackClock(response) {
    const date = Date.parse(response.headers.get("date") ?? "");
    if (Number.isNaN(date)) return;
    // The header has one-second resolution: only correct a clearly wrong local clock.
    const offset = date - Date.now();
    this.clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
  }
}
