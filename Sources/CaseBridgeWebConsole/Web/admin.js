// Staff accounts (operators and supervisors) and the node itself: peers, what is owed to each,
// certificates and warnings. Nothing here shows a victim's data.

import { call, list } from "./api.js";
import { h, fill, field, select, announce } from "./dom.js";
import { t, label, when, ago, number } from "./i18n.js";
import { session, role, errorBox, confirmSend } from "./app.js";

const roles = ["STAFF_ROLE_OFFICER", "STAFF_ROLE_SUPERVISOR", "STAFF_ROLE_AUDITOR", "STAFF_ROLE_OPERATOR"];

export async function staffPage(main) {
  const table = h("div", { id: "staff-list" });
  const result = h("div", { id: "staff-result", "aria-live": "polite" });
  const manages = ["STAFF_ROLE_OPERATOR", "STAFF_ROLE_SUPERVISOR"].includes(role());
  const assignable = role() === "STAFF_ROLE_OPERATOR" ? roles : ["STAFF_ROLE_OFFICER"];
  const refresh = async () => fill(table, staffTable(await list("ListStaff"), manages, assignable, refresh, result));
  const login = h("input", { name: "login", required: true, pattern: "[a-z0-9._-]{2,64}", autocomplete: "off" });
  const name = h("input", { name: "display_name", required: true });
  const newRole = select("role", assignable.map((r) => [r, label(r)]));
  const add = h("form", { id: "add-staff" }, h("h2", {}, t("staff.add")),
    field(t("staff.login"), login, t("staff.login.hint")), field(t("staff.name"), name, t("staff.name.hint")),
    field(t("staff.role"), newRole),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("staff.add.send"))));
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const enrolment = await call("AddStaff", {
        login: login.value.trim(), displayName: name.value.trim(), role: newRole.value,
      });
      fill(result, enrolmentNotice(enrolment));
      add.reset();
      await refresh();
    } catch (error) {
      fill(result, errorBox(error));
    }
  });
  fill(main, h("h1", {}, t("staff.title")), result, table, manages ? add : null);
  await refresh();
}

function enrolmentNotice(enrolment) {
  return h("div", { class: "notice", role: "status" },
    h("p", {}, t("staff.enrolment", { login: enrolment.account.login, when: when(enrolment.expiresAtMs) })),
    h("p", { class: "code" }, h("code", { id: "enrolment-code" }, enrolment.enrolmentCode)),
    h("p", { class: "hint" }, t("staff.enrolment.hint")));
}

function staffTable(accounts, manages, assignable, refresh, result) {
  const act = async (title, what, body, after) => {
    if (!(await confirmSend(title, [what], t("common.confirm")))) return;
    try {
      const reply = await call(body.method, body.request);
      if (after) after(reply);
      else announce(t("staff.changed"));
      await refresh();
    } catch (error) {
      fill(result, errorBox(error));
    }
  };
  return h("table", { class: "list", id: "staff-table" },
    h("thead", {}, h("tr", {}, [t("staff.login"), t("staff.name"), t("staff.role"), t("staff.state"),
      t("staff.last_login"), manages ? t("staff.actions") : null].filter(Boolean)
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, accounts.map((a) => {
      const may = manages && assignable.includes(a.role) && a.login !== session.me.login;
      const state = a.disabled ? t("staff.disabled") : !a.enrolled ? t("staff.not_enrolled")
        : Number(a.lockedUntilMs || 0) > Date.now() ? t("staff.locked") : t("staff.active");
      const roleSelect = select("role", assignable.map((r) => [r, label(r)]), a.role);
      roleSelect.setAttribute("aria-label", t("staff.role_of", { login: a.login }));
      return h("tr", {},
        h("td", {}, a.login), h("td", {}, a.displayName), h("td", {}, label(a.role)), h("td", {}, state),
        h("td", {}, when(a.lastLoginAtMs)),
        manages ? h("td", { class: "row-actions" }, may ? [
          h("button", { class: "small", onclick: () => act(t(a.disabled ? "staff.enable" : "staff.disable"), a.login,
            { method: "ChangeStaff",
              request: { login: a.login, change: a.disabled ? "CHANGE_ENABLE" : "CHANGE_DISABLE" } }) },
          t(a.disabled ? "staff.enable" : "staff.disable")),
          h("button", { class: "small", onclick: () => act(t("staff.reset"), t("staff.reset.what", { login: a.login }),
            { method: "ResetStaff", request: { login: a.login } },
            (reply) => fill(result, enrolmentNotice(reply))) }, t("staff.reset")),
          h("button", { class: "small", onclick: () => act(t("staff.sign_out"), a.login,
            { method: "ChangeStaff", request: { login: a.login, change: "CHANGE_SIGN_OUT" } }) }, t("staff.sign_out")),
          assignable.length > 1 ? [roleSelect, h("button", { class: "small", onclick: () => act(t("staff.set_role"),
            `${a.login}: ${label(roleSelect.value)}`,
            { method: "ChangeStaff", request: { login: a.login, change: "CHANGE_ROLE", role: roleSelect.value } }) },
          t("staff.set_role"))] : null,
        ] : "") : null);
    })));
}

export async function nodePage(main) {
  const body = h("div", { id: "node-status" });
  fill(main, h("h1", {}, t("node.title")), body);
  const refresh = async () => {
    const status = await call("GetStatus");
    session.node = status;
    fill(body, ...nodeStatus(status, refresh));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 10000);
  return () => clearInterval(timer);
}

function nodeStatus(status, refresh) {
  const manages = ["STAFF_ROLE_OPERATOR", "STAFF_ROLE_SUPERVISOR"].includes(role());
  const deliverNow = async (peer) => {
    try {
      const reply = await call("DeliverNow", { peerNode: peer || "" });
      announce(t("node.deliver_now.done", { count: Number(reply.messages || 0) }));
      await refresh();
    } catch (error) {
      announce(error.message);
    }
  };
  const warnings = status.warnings || [];
  return [
    warnings.length ? h("div", { class: "error", role: "alert" }, h("strong", {}, t("node.warnings")),
      h("ul", {}, warnings.map((w) => h("li", {}, w)))) : null,
    h("dl", { class: "facts" },
      h("dt", {}, t("node.id")), h("dd", {}, status.nodeId),
      h("dt", {}, t("node.role")), h("dd", {}, label(status.role)),
      status.represents ? [h("dt", {}, t("node.represents")), h("dd", {}, status.represents)] : null,
      h("dt", {}, t("node.version")), h("dd", {}, status.version),
      h("dt", {}, t("node.started")), h("dd", {}, when(status.startedAtMs)),
      h("dt", {}, t("node.certificate")),
      h("dd", {}, t("node.expires", {
        when: when(status.certificateNotAfterMs), ago: ago(status.certificateNotAfterMs),
      })),
      h("dt", {}, t("node.crl")), h("dd", {}, status.revocationChecked ? (Number(status.crlNextUpdateMs || 0)
        ? t("node.crl.next", { when: when(status.crlNextUpdateMs) }) : t("node.crl.checked")) : t("node.crl.off")),
      h("dt", {}, t("node.directory")), h("dd", {}, status.directorySigned
        ? t("node.directory.signed", { version: number(status.directoryVersion) }) : t("node.directory.plain")),
      h("dt", {}, t("node.unread")), h("dd", {}, number(status.unreadInbox))),
    h("h2", {}, t("node.peers")),
    h("table", { class: "list", id: "peers" },
      h("thead", {}, h("tr", {}, [t("node.peer"), t("node.endpoint"), t("node.reachable"), t("node.owed"),
        t("node.oldest"), t("node.failing"), t("node.last_error"), manages ? "" : null]
        .filter((c) => c !== null).map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, (status.peers || []).map((p) => h("tr", { class: p.failingSinceMs ? "failing" : "" },
        h("td", {}, p.displayName || p.nodeId, " ", h("span", { class: "meta" }, p.nodeId)), h("td", {}, p.endpoint),
        h("td", {}, p.reachable ? t("common.yes") : t("common.no")), h("td", { class: "num" }, number(p.outboxDepth)),
        h("td", {}, ago(p.oldestUndeliveredAtMs)), h("td", {}, p.failingSinceMs ? ago(p.failingSinceMs) : ""),
        h("td", {}, p.lastError || ""),
        manages ? h("td", {}, Number(p.outboxDepth || 0)
          ? h("button", { class: "small", onclick: () => deliverNow(p.nodeId) }, t("node.deliver_now"))
          : "") : null)))),
    manages ? h("div", { class: "actions" }, h("button", { id: "deliver-all", onclick: async () => {
      const all = [t("node.deliver_now.all")];
      if (await confirmSend(t("node.deliver_now"), all, t("node.deliver_now"))) await deliverNow("");
    } }, t("node.deliver_now.all"))) : null,
  ];
}
