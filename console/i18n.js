// Every string the console shows comes from this table: zh-CN (the default) and English.
// Keys are stable; tests scan a rendered page for the other language's values and for
// raw keys, so a missing entry shows up as an error, not as silently mixed languages.

export const LANGS = ["zh-CN", "en"];
export const DEFAULT_LANG = "zh-CN";
const STORAGE_KEY = "riverguard.lang";

export const STRINGS = {
  "zh-CN": {
    "app.title": "河岸防溺水值守台",
    "app.brand": "河岸卫士",
    // The switch button names the language it switches to, in that language.
    "lang.switch": "English",
    "lang.switch_hint": "切换语言",

    "login.heading": "值班登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录并启用警报声",
    "login.busy": "正在登录…",
    "login.bad_credentials": "用户名或密码错误",
    "login.unreachable": "无法连接中心服务器，请检查网络",
    "login.expired": "登录已过期，请重新登录",
    "login.failed": "登录失败：{detail}",

    "top.logout": "退出登录",
    "top.role.viewer": "观察员",
    "top.role.officer": "值班员",
    "top.role.supervisor": "值班长",
    "top.role.admin": "管理员",

    "sound.armed": "警报声已启用",
    "sound.sounding": "警报声响起中",
    "sound.blocked": "警报声被浏览器阻止 — 点击启用",
    "sound.unsupported": "此浏览器不支持警报声",

    "conn.lost": "与中心服务器的连接已断开 — 正在重连…",
    "conn.lost_for": "已断开 {duration}",
    "conn.connecting": "正在连接中心服务器…",

    "status.heading": "站点状态",
    "status.edge_online": "边缘在线",
    "status.edge_offline": "边缘离线",
    "status.edge_unknown": "边缘未上报",
    "status.outbox": "待发 {count}",
    "status.devices": "{online}/{total}",
    "status.unknown": "{count} 台状态未知",
    "status.risk": "风险",
    "risk.blue": "蓝色风险",
    "risk.yellow": "黄色风险",
    "risk.orange": "橙色风险",
    "risk.red": "红色风险",
    "device.fence": "围栏",
    "device.camera": "摄像机",
    "device.speaker": "广播",

    "alarms.heading": "未处置警情",
    "alarms.count": "{count} 条",
    "alarms.none": "当前没有未处置的警情",
    "alarms.none_hint": "新警情将在此出现并发出警报声",

    "severity.critical": "紧急",
    "severity.warning": "警告",
    "severity.info": "提示",
    "state.open": "未确认",
    "state.acknowledged": "已确认",
    "state.resolved": "已处置",

    "alarm.age": "持续",
    "alarm.events": "事件数 {count}",
    "alarm.latest": "最新",
    "alarm.acked_by": "{who} 于 {time} 确认",
    "alarm.escalated": "已升级 {level} 级",
    "alarm.snapshot": "抓拍",
    "alarm.zone_unknown": "区域 {zone}",

    "action.ack": "确认",
    "action.announce": "喊话",
    "action.resolve": "处置",
    "action.busy": "处理中…",
    "action.acked": "已确认警情",
    "action.announced": "已下发喊话",
    "action.resolved": "警情已处置",
    "action.failed": "操作失败：{detail}",
    "action.forbidden": "当前账号无此权限",
    "action.conflict": "警情状态已变化，请查看最新状态",
    "action.not_found": "警情已不存在",

    "kind.fence.breach": "围栏越界",
    "kind.fence.clear": "围栏恢复",
    "kind.fence.tamper": "围栏被破坏",
    "kind.fence.fault": "围栏故障",
    "kind.camera.intrusion": "区域入侵",
    "kind.camera.line_crossing": "越线",
    "kind.camera.loitering": "徘徊",
    "kind.camera.water_entry": "有人下水",

    "ann.heading": "喊话",
    "ann.state.pending": "待发送",
    "ann.state.received": "已接收",
    "ann.state.playing": "播放中",
    "ann.state.done": "已播完",
    "ann.state.failed": "失败",
    "ann.state.expired": "已过期",

    "resolve.heading": "处置警情",
    "resolve.outcome": "处置结果",
    "resolve.note": "备注（可选）",
    "resolve.confirm": "确认处置",
    "resolve.cancel": "取消",
    "resolve.pick": "请选择处置结果",
    "resolve.gone": "该警情已被他人处置",
    "outcome.persuaded_away": "已劝离",
    "outcome.rescued": "已救援",
    "outcome.false_alarm": "误报",
    "outcome.patrol_sent": "已派巡逻",
    "outcome.other": "其他",

    "snapshot.close": "关闭",

    "feed.heading": "实时事件",
    "feed.none": "暂无事件",

    "keys.heading": "快捷键",
    "keys.ack": "确认最上方未确认警情",
    "keys.announce": "对选中警情喊话",
    "keys.resolve": "处置选中警情",
    "keys.move": "选择警情",
    "keys.lang": "切换语言",
    "keys.close": "关闭对话框",
  },
  en: {
    "app.title": "Riverbank Duty Console",
    "app.brand": "Riverguard",
    "lang.switch": "中文",
    "lang.switch_hint": "Switch language",

    "login.heading": "Duty sign-in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in and arm alarm sound",
    "login.busy": "Signing in…",
    "login.bad_credentials": "Wrong username or password",
    "login.unreachable": "Cannot reach the hub; check the network",
    "login.expired": "Your session has expired; please sign in again",
    "login.failed": "Sign-in failed: {detail}",

    "top.logout": "Log out",
    "top.role.viewer": "Viewer",
    "top.role.officer": "Duty officer",
    "top.role.supervisor": "Supervisor",
    "top.role.admin": "Administrator",

    "sound.armed": "Sound armed",
    "sound.sounding": "Alarm sounding",
    "sound.blocked": "Sound blocked — click to enable",
    "sound.unsupported": "This browser cannot play the alarm sound",

    "conn.lost": "Connection to hub lost — reconnecting…",
    "conn.lost_for": "Lost for {duration}",
    "conn.connecting": "Connecting to the hub…",

    "status.heading": "Sites",
    "status.edge_online": "Edge online",
    "status.edge_offline": "Edge OFFLINE",
    "status.edge_unknown": "Edge not reporting",
    "status.outbox": "{count} queued",
    "status.devices": "{online}/{total}",
    "status.unknown": "{count} unknown",
    "status.risk": "Risk",
    "risk.blue": "Blue risk",
    "risk.yellow": "Yellow risk",
    "risk.orange": "Orange risk",
    "risk.red": "Red risk",
    "device.fence": "Fences",
    "device.camera": "Cameras",
    "device.speaker": "Speakers",

    "alarms.heading": "Open alarms",
    "alarms.count": "{count}",
    "alarms.none": "No open alarms",
    "alarms.none_hint": "New alarms appear here and sound the alert",

    "severity.critical": "CRITICAL",
    "severity.warning": "WARNING",
    "severity.info": "INFO",
    "state.open": "Unacknowledged",
    "state.acknowledged": "Acknowledged",
    "state.resolved": "Resolved",

    "alarm.age": "Open for",
    "alarm.events": "Events: {count}",
    "alarm.latest": "Latest",
    "alarm.acked_by": "Acknowledged by {who} at {time}",
    "alarm.escalated": "Escalated, level {level}",
    "alarm.snapshot": "Snapshot",
    "alarm.zone_unknown": "Zone {zone}",

    "action.ack": "Acknowledge",
    "action.announce": "Announce",
    "action.resolve": "Resolve",
    "action.busy": "Working…",
    "action.acked": "Alarm acknowledged",
    "action.announced": "Announcement sent",
    "action.resolved": "Alarm resolved",
    "action.failed": "Action failed: {detail}",
    "action.forbidden": "Your account may not do this",
    "action.conflict": "The alarm has changed; check its current state",
    "action.not_found": "The alarm no longer exists",

    "kind.fence.breach": "Fence breach",
    "kind.fence.clear": "Fence clear",
    "kind.fence.tamper": "Fence tamper",
    "kind.fence.fault": "Fence fault",
    "kind.camera.intrusion": "Intrusion",
    "kind.camera.line_crossing": "Line crossing",
    "kind.camera.loitering": "Loitering",
    "kind.camera.water_entry": "Person entering water",

    "ann.heading": "Announcement",
    "ann.state.pending": "pending",
    "ann.state.received": "received",
    "ann.state.playing": "playing",
    "ann.state.done": "done",
    "ann.state.failed": "failed",
    "ann.state.expired": "expired",

    "resolve.heading": "Resolve alarm",
    "resolve.outcome": "Outcome",
    "resolve.note": "Note (optional)",
    "resolve.confirm": "Resolve",
    "resolve.cancel": "Cancel",
    "resolve.pick": "Choose an outcome",
    "resolve.gone": "Someone else has resolved this alarm",
    "outcome.persuaded_away": "Persuaded away",
    "outcome.rescued": "Rescued",
    "outcome.false_alarm": "False alarm",
    "outcome.patrol_sent": "Patrol sent",
    "outcome.other": "Other",

    "snapshot.close": "Close",

    "feed.heading": "Live events",
    "feed.none": "No events yet",

    "keys.heading": "Keys",
    "keys.ack": "acknowledge top unacknowledged",
    "keys.announce": "announce on selected",
    "keys.resolve": "resolve selected",
    "keys.move": "select alarm",
    "keys.lang": "language",
    "keys.close": "close dialog",
  },
};

let current = DEFAULT_LANG;

export function loadLang(storage = globalThis.localStorage) {
  const saved = storage?.getItem(STORAGE_KEY);
  current = LANGS.includes(saved) ? saved : DEFAULT_LANG;
  return current;
}

export function setLang(lang, storage = globalThis.localStorage) {
  if (!LANGS.includes(lang)) throw new Error(`unknown language ${lang}`);
  current = lang;
  storage?.setItem(STORAGE_KEY, lang);
}

export function getLang() {
  return current;
}

export function otherLang(lang = current) {
  return lang === "zh-CN" ? "en" : "zh-CN";
}

// A missing key renders visibly (and logs), so tests and officers notice it.
export function t(key, params = {}, lang = current) {
  const template = STRINGS[lang][key];
  if (template === undefined) {
    console.error(`i18n: no ${lang} string for ${key}`);
    return `⟦${key}⟧`;
  }
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

export function has(key, lang = current) {
  return STRINGS[lang][key] !== undefined;
}

// Static markup carries data-i18n (text), data-i18n-title and data-i18n-placeholder.
export function translateStatic(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  }
}
