// The console's picture of the world, built from the hub's WebSocket messages
// (PROTOCOL 4.1). Pure functions over plain objects: no DOM, no network, so the
// ordering and merging rules can be checked on their own.

export const SEVERITY_RANK = { critical: 2, warning: 1, info: 0 };
const ACTIVE_STATES = new Set(["open", "acknowledged"]);
// Enough events to find every open alarm's latest one; older ones are dropped.
const MAX_EVENTS = 2000;
export const FEED_LENGTH = 60;
// Who "requested" the edge's own warning (local deterrence, PROTOCOL 7.10).
export const EDGE_AUTO = "edge-auto";

export function createState() {
  return {
    user: null,
    // Display names by username or audited actor (PROTOCOL 7.41).
    people: new Map(),
    sites: new Map(),
    // Devices the console fetched (a site's, on demand) or was pushed since the hello.
    devices: new Map(),
    // Sites whose devices were all fetched since the last hello.
    deviceSites: new Set(),
    // Sites being fetched: the devices pushed meanwhile, laid over the answer.
    devicesPending: new Map(),
    edges: new Map(),
    alarms: new Map(),
    announcements: new Map(),
    // Responders sent to the active alarms, by dispatch id (PROTOCOL 7.35, 7.38).
    dispatches: new Map(),
    events: new Map(),
    // Event ids the hub announced a stored snapshot for ("snapshot" messages).
    snapshots: new Set(),
    feed: [],
    lastSeq: null,
    // The hub's own links (PROTOCOL 7.13); null until the first hello brings them.
    links: null,
    edgeLinks: new Map(),
    // The console's own socket to the hub is open: while it is not, nothing the hub
    // last said about the field can be vouched for.
    hubReachable: true,
  };
}

function byId(items, key = "id") {
  return new Map((items ?? []).map((item) => [item[key], item]));
}

// What a message changed, so the page redraws only that and rings for new alarms.
function outcome() {
  return { applied: false, parts: new Set(), newAlarms: [], newIntrusions: [], resolved: [], snapshot: null };
}

export function applyMessage(state, message) {
  const result = outcome();
  const { seq, type, data } = message ?? {};
  if (!Number.isInteger(seq) || typeof type !== "string" || data === null || typeof data !== "object") {
    return result;
  }
  // A hello is a fresh picture (first connect, or a hub that no longer holds our seq,
  // or a restarted hub whose seq started again): always take it. Anything else at or
  // below what we have is a replay after reconnecting with ?since.
  if (type !== "hello" && state.lastSeq !== null && seq <= state.lastSeq) return result;
  state.lastSeq = seq;
  result.applied = true;
  switch (type) {
    case "hello":
      applyHello(state, data, result);
      break;
    case "alarm":
      applyAlarm(state, data, result);
      break;
    case "event":
      addEvent(state, data, true);
      result.parts.add("events");
      break;
    case "device":
      // Kept only for the sites fetched or being fetched (PROTOCOL 7.37): a city's
      // heartbeats bring hundreds a second, and the counts come in `site` messages.
      if (data.id && state.deviceSites.has(data.site)) {
        state.devices.set(data.id, { ...state.devices.get(data.id), ...data });
        result.parts.add("devices");
      } else if (data.id && state.devicesPending.has(data.site)) {
        state.devicesPending.get(data.site).set(data.id, data);
      }
      break;
    case "edge":
      if (data.site) {
        state.edges.set(data.site, { ...state.edges.get(data.site), ...data });
        result.parts.add("status");
      }
      break;
    case "site":
      if (data.id) {
        state.sites.set(data.id, { ...state.sites.get(data.id), ...data });
        result.parts.add("status");
        result.parts.add("alarms");
      }
      break;
    case "announcement":
      if (data.id) {
        state.announcements.set(data.id, data);
        result.parts.add("alarms");
      }
      break;
    case "dispatch":
      if (data.id && data.alarm_id) {
        if (state.alarms.has(data.alarm_id)) state.dispatches.set(data.id, data);
        result.parts.add("alarms");
      }
      break;
    case "links":
      applyLinks(state, data);
      for (const part of ["links", "status", "alarms"]) result.parts.add(part);
      break;
    case "people":
      // A responder renamed, added or removed (PROTOCOL 7.43): the whole map again.
      state.people = peopleOf(data);
      for (const part of ["alarms", "user"]) result.parts.add(part);
      break;
    case "snapshot":
      if (data.event_id) {
        markSnapshot(state, data.event_id);
        result.parts.add("alarms");
        result.snapshot = data.event_id;
      }
      break;
    default:
      // A newer hub may send types this console does not know yet: skip them.
      break;
  }
  return result;
}

function applyHello(state, data, result) {
  const previous = new Map(state.alarms);
  state.user = data.user ?? state.user;
  state.people = peopleOf(data.people);
  state.sites = byId(data.sites);
  // A hello carries no devices (PROTOCOL 7.37): pages fetch a site's devices again.
  state.devices = byId(data.devices);
  state.deviceSites = new Set();
  state.devicesPending = new Map();
  state.edges = byId(data.edges, "site");
  state.alarms = byId((data.alarms ?? []).filter((alarm) => ACTIVE_STATES.has(alarm.state)));
  state.announcements = byId(data.announcements);
  // A hub before 7.38 sends none: cards then show nobody until the next step.
  state.dispatches = byId((data.dispatches ?? []).filter((d) => state.alarms.has(d.alarm_id)));
  applyLinks(state, data.links ?? null);
  for (const alarm of state.alarms.values()) {
    if (!previous.has(alarm.id)) result.newAlarms.push(alarm);
    else if (intrusionsGrew(previous.get(alarm.id), alarm)) result.newIntrusions.push(alarm);
  }
  for (const id of previous.keys()) if (!state.alarms.has(id)) result.resolved.push(id);
  for (const part of ["alarms", "status", "events", "user", "links"]) result.parts.add(part);
}

// A hub before 7.41 names nobody; a name that is not text is left out.
function peopleOf(people) {
  if (!people || typeof people !== "object" || Array.isArray(people)) return new Map();
  return new Map(Object.entries(people).filter(([, name]) => typeof name === "string" && name));
}

function applyLinks(state, links) {
  state.links = links && typeof links === "object" ? links : null;
  state.edgeLinks = byId(state.links?.edges, "site");
}

function applyAlarm(state, alarm, result) {
  if (!alarm.id) return;
  result.parts.add("alarms");
  if (ACTIVE_STATES.has(alarm.state)) {
    const known = state.alarms.get(alarm.id);
    if (!known) result.newAlarms.push(alarm);
    else if (intrusionsGrew(known, alarm)) result.newIntrusions.push(alarm);
    state.alarms.set(alarm.id, alarm);
  } else if (state.alarms.delete(alarm.id)) {
    result.resolved.push(alarm.id);
    forgetDispatches(state, alarm.id);
  }
}

function forgetDispatches(state, alarmId) {
  for (const [id, dispatch] of state.dispatches) if (dispatch.alarm_id === alarmId) state.dispatches.delete(id);
}

// The responders sent to an alarm, in the order they were called.
export function dispatchesOf(state, alarmId) {
  return [...state.dispatches.values()]
    .filter((d) => d.alarm_id === alarmId)
    .sort((a, b) => String(a.notified_at).localeCompare(String(b.notified_at)) || a.id.localeCompare(b.id));
}

// A new intrusion re-raised a known alarm (PROTOCOL 7.36): a person entered the zone
// again, which rings as a new alarm does. Hubs before 7.36 send no count.
function intrusionsGrew(known, alarm) {
  return (alarm.intrusion_count ?? 0) > (known.intrusion_count ?? 0) && (known.intrusion_count ?? 0) > 0;
}

// The intrusion that re-raised the alarm, if its newest one did (not the first).
export function newIntrusion(alarm) {
  const list = Array.isArray(alarm?.intrusions) ? alarm.intrusions : [];
  const latest = list[list.length - 1];
  return latest && (alarm.intrusion_count ?? 0) > 1 && latest.cause !== "opened" ? latest : null;
}

// Applies an alarm returned by a REST action, unless the WebSocket already brought
// a newer version of it.
export function applyAlarmResponse(state, alarm) {
  const known = state.alarms.get(alarm?.id);
  if (!known || String(alarm.updated_at) < String(known.updated_at)) return false;
  if (ACTIVE_STATES.has(alarm.state)) state.alarms.set(alarm.id, alarm);
  else {
    state.alarms.delete(alarm.id);
    forgetDispatches(state, alarm.id);
  }
  return true;
}

// The hub holds a JPEG for this event, also one that came after the event itself
// was sent with snapshot: false (a late Frigate picture, PROTOCOL 7.10).
export function markSnapshot(state, eventId) {
  state.snapshots.add(eventId);
  if (state.snapshots.size > MAX_EVENTS) state.snapshots.delete(state.snapshots.values().next().value);
  const event = state.events.get(eventId);
  if (event && !event.snapshot) state.events.set(eventId, { ...event, snapshot: true });
}

export function addEvent(state, event, live = false) {
  if (!event?.id || state.events.has(event.id)) return;
  state.events.set(event.id, state.snapshots.has(event.id) ? { ...event, snapshot: true } : event);
  if (state.events.size > MAX_EVENTS) {
    const oldest = state.events.keys().next().value;
    state.events.delete(oldest);
  }
  if (live) {
    state.feed.unshift(event.id);
    if (state.feed.length > FEED_LENGTH) state.feed.length = FEED_LENGTH;
  }
}

// Events fetched over REST after a hello (newest first) fill the feed's history.
export function addHistory(state, events) {
  const known = new Set(state.feed);
  for (const event of events) {
    addEvent(state, event);
    if (!known.has(event.id) && state.feed.length < FEED_LENGTH) state.feed.push(event.id);
  }
  state.feed.sort((a, b) => eventTime(state.events.get(b)) - eventTime(state.events.get(a)));
}

// Repeated detections of one device, kind and track (Frigate's id) less than this
// apart are one row of the feed: a swimmer is reported every few seconds.
export const FOLD_GAP_MS = 60_000;

function repeatKey(event) {
  const track = event.attrs?.frigate_id ?? "";
  return `${event.site}\u0000${event.zone}\u0000${event.device}\u0000${event.kind}\u0000${track}`;
}

// The events that opened an alarm or began one of its intrusions (7.36).
function intrusionStarts(state) {
  const starts = new Set();
  for (const alarm of state.alarms.values()) {
    if (alarm.event_ids?.length) starts.add(alarm.event_ids[0]);
    for (const intrusion of alarm.intrusions ?? []) starts.add(intrusion.event_id);
  }
  return starts;
}

// The feed, newest first, each device's run of repeats as one row:
// [{event (the newest), count, first (the oldest one's ts)}]. Another event of the
// same zone (the fence's "clear" between two breaches) ends a run, and so does the
// event that opened an alarm or began an intrusion: what came before it is another
// person's, never folded into the new one.
export function foldedFeed(state) {
  const rows = [];
  const running = new Map(); // site and zone -> the row taking its older repeats
  const starts = intrusionStarts(state);
  for (const id of state.feed) {
    const event = state.events.get(id);
    if (!event) continue;
    const key = repeatKey(event);
    const zone = `${event.site}\u0000${event.zone}`;
    const row = running.get(zone);
    if (
      row?.key === key &&
      !row.closed &&
      eventTime({ ts: row.first }) - eventTime(event) < FOLD_GAP_MS
    ) {
      row.count += 1;
      row.first = event.ts;
      row.closed = starts.has(id);
      continue;
    }
    const fresh = { event, count: 1, first: event.ts, key, closed: starts.has(id) };
    running.set(zone, fresh);
    rows.push(fresh);
  }
  return rows;
}

function eventTime(event) {
  const value = event ? Date.parse(event.ts) : Number.NaN;
  return Number.isNaN(value) ? 0 : value;
}

// Critical first; within a severity, unacknowledged before acknowledged (someone is
// already on those), then the longest-waiting first.
export function compareAlarms(a, b) {
  return (
    (SEVERITY_RANK[b.severity] ?? -1) - (SEVERITY_RANK[a.severity] ?? -1) ||
    (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1) ||
    Date.parse(a.opened_at) - Date.parse(b.opened_at) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

export function sortedAlarms(state) {
  return [...state.alarms.values()].sort(compareAlarms);
}

export function topUnacknowledged(state) {
  return sortedAlarms(state).find((alarm) => alarm.state === "open") ?? null;
}

export function needsAlarmSound(state) {
  for (const alarm of state.alarms.values()) {
    if (alarm.severity === "critical" && alarm.state === "open") return true;
  }
  return false;
}

export function announcementsOf(state, alarm) {
  const listed = new Set(alarm.announcements ?? []);
  return [...state.announcements.values()]
    .filter((ann) => ann.alarm_id === alarm.id || listed.has(ann.id))
    .sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
}

// online, offline (lost: its last will), stopped (shut down cleanly, PROTOCOL 7.10), or
// unknown (never reported). A status without a state is read from its online flag.
export function edgeHealth(edge) {
  if (!edge) return "unknown";
  if (edge.online) return "online";
  return edge.state === "stopped" ? "stopped" : "offline";
}

// --- the hub's own links (PROTOCOL 7.13) -------------------------------------------
// Before the first links report nothing is taken as lost.

export const LINKS = ["broker", "store", "influx"];

export function linkDown(state, link) {
  return state.links?.[link]?.up === false;
}

// The hub cannot hear the field (broker) or cannot commit what it hears (state
// store): no new alarm can reach the wall, whatever the wall shows.
export function hubDeaf(state) {
  return linkDown(state, "broker") || linkDown(state, "store");
}

// A site's edge as the wall may show it: its own status, unless nobody can vouch for
// it: unknown while the console cannot reach the hub, while the hub's broker link is
// down, or while an edge that says it is online has not been heard from within its
// status intervals.
export function edgeStatus(state, siteId) {
  const health = edgeHealth(state.edges.get(siteId));
  if (state.hubReachable === false) return "unknown";
  if (!state.links) return health;
  if (linkDown(state, "broker")) return "unknown";
  if (health === "online" && state.edgeLinks.get(siteId)?.heard === false) return "unknown";
  return health;
}

// Whether the site's risk colour can be trusted: the hub hears the field and the
// site's edge is known (an edge never heard from is not a quiet site).
export function siteKnown(state, siteId) {
  if (state.hubReachable === false) return false;
  if (!state.links) return true;
  return !hubDeaf(state) && edgeStatus(state, siteId) !== "unknown";
}

// What the hub has lost, for the banner: each link down, then each edge not heard
// from (but one stopped cleanly on purpose), with since when. `severe`: the field may
// be calling and nobody hears it (InfluxDB only holds the history).
export function lostLinks(state) {
  const lost = [];
  if (!state.links) return lost;
  for (const link of LINKS) {
    if (linkDown(state, link)) {
      lost.push({ kind: link, since: state.links[link].since, severe: link !== "influx" });
    }
  }
  if (linkDown(state, "broker")) return lost; // every edge is unheard: the broker says it all
  const sites = [...state.sites.keys()].sort();
  for (const site of sites) {
    const edge = state.edgeLinks.get(site);
    if (!edge || edge.heard !== false || edgeHealth(state.edges.get(site)) === "stopped") continue;
    lost.push({ kind: "edge", site, since: edge.last_heard ?? null, severe: true });
  }
  return lost;
}

export function blindAlarm(state) {
  return lostLinks(state).some((item) => item.severe);
}

export const DEVICE_TYPES = ["fence", "camera", "speaker"];

// A site's devices as fetched: they replace what the picture held of that site.
// Whether the site's devices as the console holds them add up to the hub's counts.
export function devicesAgree(state, site) {
  const held = {};
  for (const device of state.devices.values()) {
    if (device.site !== site.id) continue;
    const count = (held[device.type] ??= { online: 0, offline: 0, unknown: 0, total: 0 });
    count.total += 1;
    if (device.online === true) count.online += 1;
    else if (device.online === false) count.offline += 1;
    else count.unknown += 1;
  }
  const hub = site.devices ?? {};
  const types = new Set([...Object.keys(held), ...Object.keys(hub)]);
  return [...types].every((type) =>
    ["online", "offline", "unknown", "total"].every((k) => (held[type]?.[k] ?? 0) === (hub[type]?.[k] ?? 0)),
  );
}

// A site's devices are being fetched: what is pushed meanwhile is newer than the answer.
export function expectDevices(state, siteId) {
  if (!state.devicesPending.has(siteId)) state.devicesPending.set(siteId, new Map());
}

export function mergeDevices(state, siteId, devices) {
  for (const [id, device] of state.devices) if (device.site === siteId) state.devices.delete(id);
  for (const device of devices) state.devices.set(device.id, device);
  for (const [id, pushed] of state.devicesPending.get(siteId) ?? []) {
    state.devices.set(id, { ...state.devices.get(id), ...pushed });
  }
  state.devicesPending.delete(siteId);
  state.deviceSites.add(siteId);
}

// The site's devices counted by the hub (PROTOCOL 7.37): the console holds only the
// devices of the sites it fetched.
export function siteSummary(state, siteId) {
  const hubCounts = state.sites.get(siteId)?.devices ?? {};
  const counts = Object.fromEntries(
    DEVICE_TYPES.map((type) => [type, { online: 0, offline: 0, unknown: 0, total: 0, ...hubCounts[type] }]),
  );
  return { edge: state.edges.get(siteId) ?? null, counts };
}

// "mm:ss" below an hour, "h:mm:ss" above: digits read the same in both languages.
export function formatAge(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// Reconnect delays: capped, jittered exponential (the same shape as riverguard.mqtt.Backoff).
export function backoffDelay(attempt, random = Math.random, initialMs = 500, capMs = 10_000) {
  const delay = Math.min(capMs, initialMs * 2 ** attempt);
  return Math.round(delay * (0.5 + random() * 0.5));
}

// --- site map, health, history ------------------------------------------------------

export function activeAlarmsIn(state, siteId, zoneId = null) {
  return [...state.alarms.values()]
    .filter((alarm) => alarm.site === siteId && (zoneId === null || alarm.zone === zoneId))
    .sort(compareAlarms);
}

// Why a zone is not watched, as the hub says (PROTOCOL 7.24): [{kind: "edge"} |
// {kind: "device", device}]; an empty list means guarded.
export function unguardedReasons(site, zoneId) {
  return site.unguarded_reasons?.[zoneId] ?? [];
}

// Offline first (they need someone), then never heard from, then online; then by
// site and id so the list does not jump around.
export function compareDeviceHealth(a, b) {
  const rank = (device) => (device.online === false ? 0 : device.online === true ? 2 : 1);
  return (
    rank(a) - rank(b) ||
    String(a.site).localeCompare(String(b.site)) ||
    String(a.id).localeCompare(String(b.id))
  );
}

// Puts counts on a full grid of hours or days from `from` to `to` (ms), so empty
// hours show as gaps; days start at local midnight, as the officer reads them.
export function alignBuckets(points, interval, from, to) {
  const size = interval === "day" ? 86_400_000 : 3_600_000;
  const shift = -new Date(from).getTimezoneOffset() * 60_000;
  const start = Math.floor((from + shift) / size) * size - shift;
  const buckets = [];
  for (let at = start; at < to; at += size) buckets.push({ start: at, count: 0 });
  for (const point of points) {
    const index = Math.floor((point.start - start) / size);
    if (index >= 0 && index < buckets.length) buckets[index].count += point.count;
  }
  return buckets;
}

// The buckets of the hub's GET /api/stats/events answer (PROTOCOL 7.23) as
// {start (ms), count}, oldest first; a bucket that does not read as one is skipped.
export function statsBuckets(answer) {
  const buckets = [];
  for (const item of Array.isArray(answer?.buckets) ? answer.buckets : []) {
    const at = Date.parse(item?.start ?? "");
    const count = Number(item?.count);
    if (!Number.isNaN(at) && Number.isFinite(count)) buckets.push({ start: at, count });
  }
  return buckets.sort((a, b) => a.start - b.start);
}

// What the next officer needs: what happened in the shift, what is still open.
export function shiftSummary(alarms, from, now) {
  const inShift = alarms.filter((alarm) => Date.parse(alarm.opened_at) >= from);
  const open = alarms.filter((alarm) => ACTIVE_STATES.has(alarm.state)).sort(compareAlarms);
  const resolved = inShift
    .filter((alarm) => alarm.state === "resolved")
    .sort((a, b) => String(b.opened_at).localeCompare(String(a.opened_at)));
  const outcomes = {};
  for (const alarm of resolved) outcomes[alarm.outcome] = (outcomes[alarm.outcome] ?? 0) + 1;
  const critical = inShift.filter((alarm) => alarm.severity === "critical").length;
  return { from, to: now, total: inShift.length, critical, open, resolved, outcomes };
}
