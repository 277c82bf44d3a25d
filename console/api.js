// The hub's REST API (PROTOCOL 4.2), with the session's tokens kept in sessionStorage:
// they survive a reload of the wall screen but not closing the browser. The access
// token is short-lived (PROTOCOL 7.3): it is renewed with the refresh token a minute
// before it runs out, or when the hub answers 401. No token ever goes into a URL.

const TOKEN_KEY = "riverguard.token";
const REFRESH_KEY = "riverguard.refresh";
const EXPIRES_KEY = "riverguard.expires";
const RENEW_BEFORE_MS = 60_000;
// The WebSocket subprotocol; the token travels as a second one, "bearer.<token>".
export const WS_SUBPROTOCOL = "riverguard.v1";

export class ApiError extends Error {
  constructor(status, code, detail, retryAfter = null) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    // Seconds to wait before trying again (429 Retry-After), or null.
    this.retryAfter = retryAfter;
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
    this.refreshToken = storage.getItem(REFRESH_KEY);
    // When the access token runs out (our clock, ms); 0: unknown.
    this.expiresAt = Number(storage.getItem(EXPIRES_KEY)) || 0;
    this.renewing = null;
    // Hub clock minus ours, from the Date header: ages count from the hub's times.
    this.clockOffsetMs = 0;
    this.onUnauthorized = () => {};
  }

  setToken(token) {
    this.token = token;
    if (token) this.storage.setItem(TOKEN_KEY, token);
    else {
      this.storage.removeItem(TOKEN_KEY);
      this.#setRefresh(null, 0);
    }
  }

  #setRefresh(refreshToken, expiresAt) {
    this.refreshToken = refreshToken;
    this.expiresAt = expiresAt;
    if (refreshToken) {
      this.storage.setItem(REFRESH_KEY, refreshToken);
      this.storage.setItem(EXPIRES_KEY, String(expiresAt));
    } else {
      this.storage.removeItem(REFRESH_KEY);
      this.storage.removeItem(EXPIRES_KEY);
    }
  }

  #setGrant(data) {
    this.setToken(data.access_token);
    this.#setRefresh(data.refresh_token ?? null, Date.now() + data.expires_in * 1000);
  }

  // New tokens for the refresh token (each is good once); one renewal at a time.
  // False when there is none or the hub refused it (the session is over).
  renew() {
    if (!this.refreshToken) return Promise.resolve(false);
    this.renewing ??= (async () => {
      try {
        const body = { refresh_token: this.refreshToken };
        const response = await this.#fetch("POST", "/api/auth/refresh", body, false);
        this.#setGrant(await response.json());
        return true;
      } catch (error) {
        if (error.status === 401) this.setToken(null);
        return false;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  // Renews the access token if it runs out within a minute.
  async fresh() {
    if (this.token && this.expiresAt && Date.now() > this.expiresAt - RENEW_BEFORE_MS) {
      await this.renew();
    }
  }

  // Ends the session on the hub (its tokens stop working there) and forgets it here.
  async logout() {
    const token = this.token;
    this.setToken(null);
    if (!token) return;
    try {
      await fetch(`${this.base}/api/auth/logout`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
        keepalive: true,
      });
    } catch {
      // Unreachable: the access token runs out by itself within minutes.
    }
  }

  now() {
    return Date.now() + this.clockOffsetMs;
  }

  async login(username, password) {
    const body = new URLSearchParams({ username, password, grant_type: "password" });
    const response = await this.#fetch("POST", "/api/auth/token", body, false);
    const data = await response.json();
    this.#setGrant(data);
    return data;
  }

  async request(method, path, body = undefined) {
    await this.fresh();
    let response;
    try {
      response = await this.#fetch(method, path, body, true);
    } catch (error) {
      if (error.status !== 401 || !(await this.renew())) {
        if (error.status === 401) this.onUnauthorized();
        throw error;
      }
      try {
        response = await this.#fetch(method, path, body, true);
      } catch (again) {
        if (again.status === 401) this.onUnauthorized();
        throw again;
      }
    }
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

  // One page of a site's devices (PROTOCOL 7.37): {site, total, offset, limit, devices}.
  siteDevices(siteId, offset = 0, limit = 1000) {
    return this.request(
      "GET",
      `/api/sites/${encodeURIComponent(siteId)}/devices?${query({ offset, limit })}`,
    );
  }

  offlineDevices() {
    return this.request("GET", "/api/devices?online=false");
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

  // Who was called for an alarm and how far each has got (PROTOCOL 7.35).
  dispatches(alarmId) {
    return this.request("GET", `/api/alarms/${encodeURIComponent(alarmId)}/dispatches`);
  }

  cancelDispatch(dispatchId) {
    return this.request("POST", `/api/dispatches/${encodeURIComponent(dispatchId)}/cancel`, {});
  }

  // An officer sends a responder to an alarm by hand (PROTOCOL 7.35).
  sendDispatch(alarmId, responderId) {
    return this.request("POST", `/api/alarms/${encodeURIComponent(alarmId)}/dispatches`, {
      responder: responderId,
    });
  }

  // Every responder, and who each level of each site would call now.
  responders() {
    return this.request("GET", "/api/responders");
  }

  callNextLevel(alarmId) {
    return this.request("POST", `/api/alarms/${encodeURIComponent(alarmId)}/next-level`);
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

  // A short-lived signed URL for the browser to load by itself (a download, a page).
  async link(path) {
    const made = await this.request("POST", "/api/links", { path });
    return this.base + made.url;
  }

  // The token goes as a subprotocol, never in the URL (PROTOCOL 7.1).
  wsProtocols() {
    return [WS_SUBPROTOCOL, `bearer.${this.token ?? ""}`];
  }

  wsUrl(since) {
    const url = new URL("/api/ws", this.base || location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
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
      const retryAfter = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
      throw new ApiError(
        response.status,
        code,
        detail,
        Number.isNaN(retryAfter) ? null : retryAfter,
      );
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
