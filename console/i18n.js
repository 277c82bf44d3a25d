// Every string the console shows comes from one table per language: zh-CN (the
// default, strings-zh.js) and English (strings-en.js). Keys are stable; tests scan a
// rendered page for the other language's values and for raw keys, so a missing entry
// shows up as an error, not as silently mixed languages.

import { EN } from "./strings-en.js";
import { ZH } from "./strings-zh.js";

export const LANGS = ["zh-CN", "en"];
export const DEFAULT_LANG = "zh-CN";
const STORAGE_KEY = "riverguard.lang";

export const STRINGS = { "zh-CN": ZH, en: EN };

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
