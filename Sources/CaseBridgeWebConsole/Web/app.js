// The staff console: a page per screen, chosen by the address after "#", for the signed-in
// account of this node. What each role may see and do is decided by the node; the pages only
// leave out what the node would refuse.

import { call, onSessionEnded, ApiError } from "./api.js";
import { h, fill, announce } from "./dom.js";
import { loadCatalog, t, label } from "./i18n.js";
import { signInPage, signInDialog } from "./signin.js";
import { queuePage } from "./queue.js";
import { casesPage } from "./cases.js";
import { casePage } from "./case.js";
import { filePage } from "./file.js";
import { staffPage, nodePage } from "./admin.js";
import { reportsPage } from "./reports.js";
import { duplicatesPage } from "./duplicates.js";

/** What every screen is given: the account, the node, and helpers. */
export const session = { me: null, node: null };

const screens = {
  queue: { page: queuePage, title: "nav.queue" },
  cases: { page: casesPage, title: "nav.cases" },
  case: { page: casePage, title: "case.title" },
  file: { page: filePage, title: "nav.file", when: () => canFile() },
  staff: { page: staffPage, title: "nav.staff", when: () => role() !== "STAFF_ROLE_OFFICER" },
  node: { page: nodePage, title: "nav.node" },
  reports: { page: reportsPage, title: "nav.reports" },
  duplicates: { page: duplicatesPage, title: "nav.duplicates", when: () => isNCCT() && seesPersonalData() },
};

export function role() {
  return session.me?.role;
}

export function isNCCT() {
  return session.node?.role === "NODE_ROLE_NCCT";
}

export function canWork() {
  return ["STAFF_ROLE_OFFICER", "STAFF_ROLE_SUPERVISOR"].includes(role());
}

function canFile() {
  return canWork() && !isNCCT();
}

export function seesPersonalData() {
  return role() !== "STAFF_ROLE_OPERATOR";
}

/** A peer's name from the directory ("NCCT", "Embassy of Indonesia"), or its id. */
export function nodeName(id) {
  if (id === session.node?.nodeId) return t("node.us", { id });
  return session.node?.peers?.find((p) => p.nodeId === id)?.displayName || id;
}

let stopScreen = null;
let firstScreen = true;

async function show() {
  const [name, rest = ""] = location.hash.replace(/^#\/?/, "").split("/", 2);
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const screen = screens[name] && (!screens[name].when || screens[name].when()) ? screens[name] : screens.queue;
  if (stopScreen) stopScreen();
  stopScreen = null;
  const main = document.getElementById("main");
  renderNav(screen);
  fill(main, h("p", { class: "loading" }, t("common.loading")));
  try {
    stopScreen = (await screen.page(main, decodeURIComponent(rest.split("?")[0]), query)) || null;
  } catch (error) {
    fill(main, h("h1", { tabindex: "-1" }, t("common.error")), errorBox(error));
  }
  document.title = `${t(screen.title)} · CaseBridge`;
  // After a move to another screen, focus goes to its heading (where a screen reader reads on);
  // the first screen leaves it at the top, where the skip link is.
  const heading = main.querySelector("h1");
  if (heading && !firstScreen && document.activeElement?.closest?.("#main") == null) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  firstScreen = false;
}

function renderNav(current) {
  const links = [
    ["queue", "nav.queue"],
    ["cases", "nav.cases"],
    canFile() ? ["file", "nav.file"] : null,
    isNCCT() && seesPersonalData() ? ["duplicates", "nav.duplicates"] : null,
    ["reports", "nav.reports"],
    role() !== "STAFF_ROLE_OFFICER" ? ["staff", "nav.staff"] : null,
    ["node", "nav.node"],
  ].filter(Boolean);
  fill(
    document.getElementById("nav"),
    h(
      "ul",
      {},
      links.map(([name, key]) =>
        h("li", {}, h("a", { href: `#/${name}`, "aria-current": screens[name] === current ? "page" : null }, t(key))),
      ),
    ),
  );
}

/** An error as a person can act on it: what happened and the node's own words. */
export function errorBox(error) {
  const text = error instanceof ApiError ? error.message : String(error?.message || error);
  const key = error instanceof ApiError ? `error.${error.code}` : "error.unknown";
  return h("div", { class: "error", role: "alert" }, h("strong", {}, t(key)), " ", text);
}

/** A confirmation before anything is sent: what will go to whom. Resolves true to go ahead. */
export function confirmSend(title, lines, sendLabel) {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      resolve(answer);
    };
    fill(
      dialog,
      h("h2", { id: "dialog-title" }, title),
      h("ul", { class: "confirm-lines" }, lines.map((line) => h("li", {}, line))),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "primary", id: "confirm-send", onclick: () => done(true) }, sendLabel || t("common.send")),
        h("button", { onclick: () => done(false) }, t("common.cancel")),
      ),
    );
    dialog.onclose = () => resolve(false);
    dialog.showModal();
    dialog.querySelector("#confirm-send").focus();
  });
}

async function signedIn() {
  session.me = await call("WhoAmI");
  session.node = await call("GetStatus");
  document.getElementById("top").hidden = false;
  fill(document.getElementById("node-name"), `${session.node.nodeId}`);
  fill(
    document.getElementById("me"),
    h("span", { class: "who" }, session.me.displayName, " · ", label(session.me.role)),
    h("button", { class: "link", id: "sign-out", onclick: signOut }, t("nav.signout")),
  );
  window.onhashchange = show;
  await show();
}

async function signOut() {
  try {
    await call("Logout");
  } catch {
    // Signed out already: the page starts over either way.
  }
  sessionStorage.clear();
  location.hash = "";
  location.reload();
}

async function start() {
  await loadCatalog(["en"]);
  fill(document.getElementById("skip-link"), t("nav.skip"));
  onSessionEnded(() => signInDialog(session.me?.login));
  try {
    await signedIn();
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "unauthenticated") {
      fill(document.getElementById("main"), errorBox(error));
      return;
    }
    document.getElementById("top").hidden = true;
    await signInPage(document.getElementById("main"));
    firstScreen = false;  // the sign-in form is gone: focus goes to the new screen's heading
    await signedIn();
    announce(t("signin.welcome", { name: session.me.displayName }));
  }
}

start();
