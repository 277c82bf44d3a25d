// The login page, and which of the two views (login, console) is shown.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";

const $ = (selector) => document.querySelector(selector);

export function showView(name) {
  document.body.dataset.view = name;
  $("#login-view").hidden = name !== "login";
  $("#console-view").hidden = name !== "console";
}

// The login error keeps its key, so a language switch re-translates it.
function setLoginError(key, params = {}) {
  const error = $("#login-error");
  error.hidden = !key;
  error.message = key ? { key, params } : null;
  error.textContent = key ? t(key, params) : "";
}

export function retranslateLogin() {
  const shown = $("#login-error").message;
  if (shown) setLoginError(shown.key, shown.params);
}

export function showLogin(messageKey = null) {
  showView("login");
  setLoginError(messageKey);
  $("#login-submit").disabled = false;
  $("#login-submit").textContent = t("login.submit");
  document.title = t("app.title");
  $("#login-username").focus();
}

// onUser(user): signed in, the console takes over.
export function bindLogin(api, sound, onUser) {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    // The click is the user gesture browsers require before a page may make sound.
    sound.arm();
    const username = $("#login-username").value.trim();
    const password = $("#login-password").value;
    const submit = $("#login-submit");
    submit.disabled = true;
    submit.textContent = t("login.busy");
    setLoginError(null);
    try {
      await api.login(username, password);
      const user = await api.me();
      $("#login-password").value = "";
      onUser(user);
    } catch (failure) {
      setLoginError(...loginError(failure));
      submit.disabled = false;
      submit.textContent = t("login.submit");
    }
  });
}

function loginError(failure) {
  if (failure instanceof ApiError && (failure.status === 401 || failure.status === 400)) {
    return ["login.bad_credentials"];
  }
  // Throttled (PROTOCOL 7.16): say how long, rather than let the officer keep trying.
  if (failure instanceof ApiError && failure.status === 429) {
    return ["login.throttled", { seconds: failure.retryAfter ?? 60 }];
  }
  if (failure instanceof ApiError && failure.status === 0) return ["login.unreachable"];
  return ["login.failed", { detail: failure.message }];
}
