// Signing in (password and a code from the authenticator app, or a recovery code) and setting an
// account up for the first time with the enrolment code an operator or supervisor gave.

import { call } from "./api.js";
import { h, fill, field } from "./dom.js";
import { t } from "./i18n.js";
import { errorBox } from "./app.js";

function signInForm(login, onDone, onEnrol) {
  const error = h("div", { class: "form-error" });
  const loginInput = h("input", { name: "login", autocomplete: "username", required: true, value: login || "" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = h("input", {
    name: "code", autocomplete: "one-time-code", required: true, inputmode: "numeric", spellcheck: "false",
  });
  const form = h(
    "form",
    { class: "signin", id: "signin-form" },
    field(t("signin.login"), loginInput),
    field(t("signin.password"), password),
    field(t("signin.code"), code, t("signin.code.hint")),
    error,
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, t("signin.submit"))),
    onEnrol ? h("p", {}, h("button", { type: "button", class: "link", onclick: onEnrol }, t("signin.enrol"))) : null,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(error);
    try {
      await call("Login", {
        login: loginInput.value.trim(), password: password.value, code: code.value.trim(), client: "web",
      });
      password.value = "";
      onDone();
    } catch (failure) {
      code.value = "";
      fill(error, errorBox(failure));
      code.focus();
    }
  });
  return form;
}

/** The whole page, before anything else: resolves once signed in. */
export function signInPage(main) {
  return new Promise((resolve) => {
    const signIn = () => {
      fill(main, h("h1", {}, t("signin.title")), signInForm("", resolve, enrol));
      main.querySelector("input").focus();
    };
    const enrol = () => enrolment(main, resolve, signIn);
    signIn();
  });
}

/** Over the page, when a session ended while someone was working: what they typed stays. */
export function signInDialog(login) {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    fill(
      dialog,
      h("h2", { id: "dialog-title" }, t("signin.again")),
      h("p", {}, t("signin.again.why")),
      signInForm(login, () => {
        dialog.close();
        resolve();
      }),
    );
    dialog.oncancel = (event) => event.preventDefault();
    if (!dialog.open) dialog.showModal();
    dialog.querySelector("input[name=password]").focus();
  });
}

/** First time: the enrolment code, then the authenticator app, a password and a first code. */
function enrolment(main, resolve, back) {
  const error = h("div", { class: "form-error" });
  const login = h("input", { name: "login", autocomplete: "username", required: true });
  const enrolmentCode = h("input", { name: "enrolment_code", required: true, spellcheck: "false" });
  const start = h(
    "form",
    { id: "enrol-form" },
    h("p", {}, t("enrol.intro")),
    field(t("signin.login"), login),
    field(t("enrol.code"), enrolmentCode, t("enrol.code.hint")),
    error,
    h(
      "div",
      { class: "actions" },
      h("button", { class: "primary", type: "submit" }, t("enrol.next")),
      h("button", { type: "button", onclick: back }, t("common.back")),
    ),
  );
  start.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(error);
    try {
      const secret = await call("BeginEnrolment", {
        login: login.value.trim(), enrolmentCode: enrolmentCode.value.trim(),
      });
      secondStep(login.value.trim(), enrolmentCode.value.trim(), secret);
    } catch (failure) {
      fill(error, errorBox(failure));
    }
  });
  fill(main, h("h1", {}, t("enrol.title")), start);
  login.focus();

  function secondStep(account, codeGiven, secret) {
    const stepError = h("div", { class: "form-error" });
    const secretInput = (name) => h("input", { name, type: "password", autocomplete: "new-password", required: true });
    const password = secretInput("new_password");
    password.minLength = 12;
    const repeat = secretInput("repeat_password");
    const code = h("input", { name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true });
    const form = h(
      "form",
      { id: "enrol-finish" },
      h("ol", { class: "steps" },
        h("li", {}, t("enrol.scan")),
        h("li", {}, t("enrol.password")),
        h("li", {}, t("enrol.first_code"))),
      h("figure", { class: "qr" },
        h("pre", { "aria-hidden": "true" }, secret.qrText),
        h("figcaption", {}, t("enrol.secret"), " ", h("code", { id: "totp-secret" }, secret.secret))),
      field(t("enrol.new_password"), password, t("enrol.new_password.hint")),
      field(t("enrol.repeat_password"), repeat),
      field(t("signin.code"), code),
      stepError,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, t("enrol.finish"))),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      fill(stepError);
      if (password.value !== repeat.value) {
        fill(stepError, h("div", { class: "error", role: "alert" }, t("enrol.mismatch")));
        repeat.focus();
        return;
      }
      try {
        const done = await call("CompleteEnrolment", {
          login: account, enrolmentCode: codeGiven, newPassword: password.value, code: code.value.trim(), client: "web",
        });
        recoveryCodes(done.recoveryCodes || []);
      } catch (failure) {
        fill(stepError, errorBox(failure));
      }
    });
    fill(main, h("h1", {}, t("enrol.title")), form);
    password.focus();
  }

  function recoveryCodes(codes) {
    const next = h("button", { class: "primary", onclick: () => resolve() }, t("enrol.done"));
    fill(
      main,
      h("h1", {}, t("enrol.recovery.title")),
      h("p", {}, t("enrol.recovery.why")),
      h("ul", { class: "codes", id: "recovery-codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
      h("div", { class: "actions" }, next),
    );
    next.focus();
  }
}
