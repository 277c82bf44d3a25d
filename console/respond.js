// The responder page: one alarm, one responder, opened from the link in their
// message. The token in the address is all it has (no login): it reads the call
// from /api/respond/<token> and moves the dispatch on with the buttons.

const STRINGS = {
  zh: {
    title: "河道告警处置",
    other: "English",
    severity: { critical: "紧急", warning: "警告", info: "提示" },
    kind: {
      "fence.breach": "围栏越界",
      "fence.clear": "围栏恢复",
      "fence.tamper": "围栏被破坏",
      "fence.fault": "围栏故障",
      "camera.intrusion": "区域入侵",
      "camera.line_crossing": "越线",
      "camera.loitering": "徘徊",
      "camera.water_entry": "有人下水",
    },
    triggered: "触发：",
    since: (text) => `告警已持续 ${text}`,
    state: {
      notified: "已通知，等待您接受",
      accepted: "已接受",
      on_the_way: "正在赶往现场",
      on_scene: "已到达现场",
      finished: "已完成",
      declined: "已拒绝",
      no_answer: "未应答（已通知下一级）",
      cancelled: "已被值班员取消",
    },
    overdue: "（超时未到达）",
    action: {
      accept: "接受任务",
      depart: "出发，正在赶往",
      arrive: "已到达现场",
      finish: "处置完成",
      decline: "无法前往",
    },
    note: "处置情况（可选）",
    refused: "链接无效或已过期，请联系值班员。",
    resolved: "值班员已将此警情处置完毕。",
    failed: "操作未成功，请重试。",
    hello: (name) => `${name}，您好。`,
  },
  en: {
    title: "River alarm response",
    other: "中文",
    severity: { critical: "CRITICAL", warning: "WARNING", info: "INFO" },
    kind: {
      "fence.breach": "fence breach",
      "fence.clear": "fence clear",
      "fence.tamper": "fence tamper",
      "fence.fault": "fence fault",
      "camera.intrusion": "intrusion",
      "camera.line_crossing": "line crossing",
      "camera.loitering": "loitering",
      "camera.water_entry": "person entering water",
    },
    triggered: "Triggered by: ",
    since: (text) => `Open for ${text}`,
    state: {
      notified: "Called: waiting for you to accept",
      accepted: "Accepted",
      on_the_way: "On the way",
      on_scene: "On scene",
      finished: "Finished",
      declined: "Declined",
      no_answer: "No answer (the next level was called)",
      cancelled: "Called off by the duty officer",
    },
    overdue: " (late)",
    action: {
      accept: "Accept",
      depart: "On my way",
      arrive: "On scene",
      finish: "Finished",
      decline: "Cannot go",
    },
    note: "What was done (optional)",
    refused: "This link is invalid or expired. Call the duty officer.",
    resolved: "The duty officer has closed this alarm.",
    failed: "That did not go through. Try again.",
    hello: (name) => `Hello ${name}. `,
  },
};

// The buttons each state offers, the first the one most likely pressed.
const NEXT = {
  notified: ["accept", "arrive", "decline"],
  accepted: ["depart", "arrive"],
  on_the_way: ["arrive"],
  on_scene: ["finish"],
};

const token = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const base = `/api/respond/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);
let lang = null;
let call = null;
let busy = false;

function strings() {
  return STRINGS[lang || "zh"];
}

function elapsed(since) {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

function drawMap(site, zoneId) {
  const svg = $("map");
  const map = site.map;
  if (!map) {
    svg.hidden = true;
    return;
  }
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${map.width} ${map.height}`);
  const points = (list) => list.map(([x, y]) => `${x},${y}`).join(" ");
  const add = (tag, cls, pts) => {
    const shape = document.createElementNS(ns, tag);
    shape.setAttribute("class", cls);
    shape.setAttribute("points", points(pts));
    svg.append(shape);
  };
  if (map.water.length) add("polygon", "water", map.water);
  for (const zone of site.zones) {
    if (zone.area.length) add("polygon", zone.id === zoneId ? "zone alarm" : "zone", zone.area);
  }
  if (map.bank.length) add("polyline", "bank", map.bank);
  svg.hidden = false;
}

function render() {
  const t = strings();
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  $("title").textContent = t.title;
  $("lang").textContent = t.other;
  if (!call) return;
  const { alarm, site, zone, dispatch, responder } = call;
  const english = lang === "en";
  const siteName = (english && site.name_en) || site.name;
  const zoneName = (english && zone.name_en) || zone.name;
  $("call").hidden = false;
  const severity = $("severity");
  severity.textContent = t.severity[alarm.severity] || alarm.severity;
  severity.className = `severity ${alarm.severity}`;
  $("where").textContent = `${siteName} · ${zoneName}`;
  const kinds = alarm.kinds.map((kind) => t.kind[kind] || kind);
  $("what").textContent = `${t.hello(responder.name)}${t.triggered}${kinds.join(english ? ", " : "、")}`;
  $("since").textContent = t.since(elapsed(alarm.opened_at));
  $("state").textContent = t.state[dispatch.state] + (dispatch.overdue_at ? t.overdue : "");
  // Someone on the way should know the alarm is over; they may still report.
  $("resolved").hidden = alarm.state !== "resolved";
  $("resolved").textContent = t.resolved;
  const buttons = $("buttons");
  buttons.replaceChildren();
  const actions = NEXT[dispatch.state] || [];
  actions.forEach((action, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = t.action[action];
    if (index === 0) button.className = "primary";
    button.disabled = busy;
    button.addEventListener("click", () => step(action));
    buttons.append(button);
  });
  const noting = dispatch.state === "on_scene";
  $("note").hidden = !noting;
  $("note-label").hidden = !noting;
  $("note-label").textContent = t.note;
  drawMap(site, zone.id);
}

function showError(message) {
  const error = $("error");
  error.textContent = message;
  error.hidden = false;
}

async function load() {
  const response = await fetch(base, { cache: "no-store" });
  if (!response.ok) {
    $("call").hidden = true;
    showError(strings().refused);
    return;
  }
  call = await response.json();
  if (lang === null) lang = call.responder.language === "en" ? "en" : "zh";
  $("error").hidden = true;
  render();
}

async function step(action) {
  busy = true;
  render();
  const note = action === "finish" ? $("note").value.trim() : "";
  try {
    const response = await fetch(`${base}/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ note: note || null }),
    });
    if (!response.ok) showError(strings().failed);
    else call.dispatch = await response.json();
  } catch {
    showError(strings().failed);
  }
  busy = false;
  render();
}

$("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  render();
});
const snapshot = $("snapshot");
snapshot.addEventListener("load", () => {
  snapshot.hidden = false;
});
snapshot.addEventListener("error", () => {
  snapshot.hidden = true;
});
snapshot.src = `/respond/${encodeURIComponent(token)}/snapshot`;

setInterval(() => {
  if (call) $("since").textContent = strings().since(elapsed(call.alarm.opened_at));
}, 1000);
// Another device of the same responder, or an officer, may move the dispatch on.
setInterval(() => {
  if (!busy) load();
}, 15000);
load();
