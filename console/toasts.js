// Short notes in the corner (an action done or refused). Each keeps its key and
// parameters so a language switch re-translates it.

import { t } from "./i18n.js";

const SHOWN_MS = { error: 10_000, other: 5_000 };

export function toast(key, params = {}, kind = "info") {
  const el = document.createElement("div");
  el.className = `toast toast-${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.message = { key, params };
  el.textContent = t(key, params);
  document.querySelector("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? SHOWN_MS.error : SHOWN_MS.other);
}

export function retranslateToasts() {
  for (const el of document.querySelector("#toasts").children) {
    el.textContent = t(el.message.key, el.message.params);
  }
}
