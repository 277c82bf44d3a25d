// The WebSocket to the hub (PROTOCOL 4.1): subscribe to every site's events, keep
// the last seq, and reconnect with capped jittered backoff and ?since=<last seq>.
// The token goes as the subprotocol "bearer.<token>" (7.1), renewed before each
// connect when it is about to run out; never in the URL.
// Close 4008 means "too slow": reconnect at once. 4401 (the hub's), 4001 and 1008
// mean the token is no longer good: hand back to the login page.
// The hub sends a "heartbeat" every interval_s (PROTOCOL 7.17); a socket that brings
// nothing for three intervals is a hung hub or a dead path, not a quiet night: it is
// shown lost, dropped and opened again.

import { backoffDelay } from "./state.js";

const CLOSE_TOO_SLOW = 4008;
const AUTH_CLOSE_CODES = new Set([4401, 4001, 1008]);
// Keeps idle proxies from cutting the socket and surfaces a dead one on our side.
const PING_INTERVAL_MS = 20_000;
// Until the hub's first heartbeat says its interval.
const HEARTBEAT_DEFAULT_MS = 5_000;
const SILENT_INTERVALS = 3;

export class HubConnection {
  // Every site's events; device messages of the sites whose devices are shown only.
  subscribe() {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    const op = { op: "subscribe", events: ["*"] };
    if (this.getDeviceSites) op.devices = this.getDeviceSites();
    this.socket.send(JSON.stringify(op));
  }

  constructor(api, { getSince, getDeviceSites = null, onMessage, onStatus, onAuthFailure }) {
    this.api = api;
    this.getSince = getSince;
    // The sites whose `device` messages the console takes (PROTOCOL 7.37).
    this.getDeviceSites = getDeviceSites;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onAuthFailure = onAuthFailure;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.watchdog = null;
    this.heartbeatMs = HEARTBEAT_DEFAULT_MS;
    this.stopped = true;
    this.status = "connecting";
    this.lostSince = null;
    this.onOffline = () => this.socket?.close();
    this.onOnline = () => this.#reconnectNow();
  }

  start() {
    this.stopped = false;
    addEventListener("offline", this.onOffline);
    addEventListener("online", this.onOnline);
    this.#setStatus("connecting");
    this.#connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener("offline", this.onOffline);
    removeEventListener("online", this.onOnline);
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    clearTimeout(this.watchdog);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "logout");
  }

  #setStatus(status) {
    if (status === "lost" && this.status !== "lost") this.lostSince = Date.now();
    if (status === "open") this.lostSince = null;
    this.status = status;
    this.onStatus(status, this.lostSince);
  }

  async #connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    await this.api.fresh();
    if (this.stopped) return;
    let socket;
    try {
      socket = new WebSocket(this.api.wsUrl(this.getSince()), this.api.wsProtocols());
    } catch (error) {
      console.error("websocket", error);
      this.#scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.#watch(socket); // a handshake a hung hub never answers counts as silence too
    let opened = false;
    let received = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.subscribe();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ op: "ping" }));
      }, PING_INTERVAL_MS);
      this.#watch(socket);
      this.#setStatus("open");
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return; // dropped as silent
      this.#watch(socket);
      if (!received) {
        received = true;
        this.attempt = 0; // a hub that answers is healthy: start the backoff again
      }
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        console.warn("hub sent a message that is not JSON", String(event.data).slice(0, 200));
        return;
      }
      // batch=1 (PROTOCOL 4.1): an array of messages in seq order.
      for (const message of Array.isArray(frame) ? frame : [frame]) {
        if (message?.type === "heartbeat") {
          const interval = Number(message.data?.interval_s);
          if (Number.isFinite(interval) && interval > 0) this.heartbeatMs = interval * 1000;
          this.#watch(socket);
          continue;
        }
        this.onMessage(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return; // superseded, stopped or dropped as silent
      clearInterval(this.pinger);
      clearTimeout(this.watchdog);
      this.socket = null;
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.has(event.code)) {
        this.onAuthFailure();
        return;
      }
      this.#setStatus("lost");
      if (event.code === CLOSE_TOO_SLOW) {
        this.attempt = 0;
        this.#reconnectNow();
      } else if (!opened) {
        // A refused handshake looks like 1006 to a browser: ask the REST API
        // whether the token is still good before trying again.
        this.#checkToken().then((good) => {
          if (good) this.#scheduleReconnect();
          else if (!this.stopped) this.onAuthFailure();
        });
      } else {
        this.#scheduleReconnect();
      }
    });
  }

  // Restarted by every frame: SILENT_INTERVALS heartbeats missed drop the socket.
  #watch(socket) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.#silent(socket), this.heartbeatMs * SILENT_INTERVALS);
  }

  #silent(socket) {
    if (socket !== this.socket || this.stopped) return;
    console.warn("hub silent for", SILENT_INTERVALS, "heartbeats: reconnecting");
    clearInterval(this.pinger);
    this.socket = null;
    // A hung hub may never answer the closing handshake: no waiting for it.
    socket.close(4000, "hub silent");
    this.#setStatus("lost");
    this.#scheduleReconnect();
  }

  async #checkToken() {
    try {
      await this.api.me();
      return true;
    } catch (error) {
      return error.status !== 401;
    }
  }

  #scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.#connect(), delay);
  }

  #reconnectNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#connect(), 0);
  }
}
