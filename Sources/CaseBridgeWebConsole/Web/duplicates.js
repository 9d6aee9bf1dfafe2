// Duplicates (NCCT): persons who seem to have been reported more than once, side by side, for an
// officer to confirm as the same person or dismiss. A confirmation links the two cases; each embassy
// is told only that one of its persons was linked to another report.

import { call } from "./api.js";
import { h, fill, announce } from "./dom.js";
import { t, label, when, number } from "./i18n.js";
import { canWork, nodeName, errorBox, confirmSend } from "./app.js";
import { caseLink } from "./cases.js";

const pageSize = 20;

export async function duplicatesPage(main, _, query) {
  const all = query.get("state") === "all";
  const offset = Math.max(0, Number(query.get("offset") || 0));
  const results = h("div", { id: "matches" });
  const tab = (state, key) => h("a", { href: `#/duplicates${state ? `?state=${state}` : ""}`,
    "aria-current": (state === "all") === all ? "page" : null }, t(key));
  fill(main, h("h1", {}, t("dup.title")), h("p", { class: "lead" }, t("dup.lead")),
    h("nav", { class: "tabs", "aria-label": t("dup.which") }, tab("", "dup.open"), " · ", tab("all", "dup.all")),
    results);
  const load = async () => {
    try {
      const page = await call("ListMatches", { allStates: all, limit: pageSize, offset });
      fill(results, ...render(page, all, offset, load));
    } catch (error) {
      fill(results, errorBox(error));
    }
  };
  await load();
}

function render(page, all, offset, reload) {
  const matches = page.matches || [];
  const total = Number(page.total || 0);
  const link = (to) => `#/duplicates?${new URLSearchParams({ ...(all ? { state: "all" } : {}), offset: to })}`;
  return [
    h("p", { class: "total", id: "match-total", "aria-live": "polite" }, total === 0
      ? t(all ? "dup.none_all" : "dup.none")
      : t("dup.range", { from: offset + 1, to: offset + matches.length, total })),
    ...matches.map((match) => matchCard(match, reload)),
    h("nav", { class: "pager", "aria-label": t("cases.pages") },
      offset > 0 ? h("a", { href: link(Math.max(0, offset - pageSize)), rel: "prev", class: "button" },
        t("cases.previous")) : null,
      offset + matches.length < total
        ? h("a", { href: link(offset + pageSize), rel: "next", class: "button" }, t("cases.next")) : null),
  ];
}

/** One match: both persons field by field, what agrees and what differs, and the decision. */
function matchCard(match, reload) {
  const agree = new Set(match.agreeingFields || []);
  const differ = new Set(match.conflictingFields || []);
  const a = match.person || {}, b = match.otherPerson || {};
  const rowClass = (field) => (agree.has(field) ? "agree" : differ.has(field) ? "differ" : "");
  const row = (field, key, left, right) => h("tr", { class: rowClass(field) },
    h("th", { scope: "row" }, t(key), agree.has(field) ? ` ✓ ${t("dup.agrees")}` : "",
      differ.has(field) ? ` ✗ ${t("dup.differs")}` : ""),
    h("td", {}, left || "–"), h("td", {}, right || "–"));
  const names = (p) => [p.fullName, p.nativeName, ...(p.otherNames || [])].filter(Boolean).join(" / ");
  const side = (summary, ref) => summary
    ? h("span", {}, caseLink(summary), ` · ${ref} · ${nodeName(summary.requestingNode)} · ${label(summary.status)}`)
    : ref;
  const decided = match.state !== "MATCH_STATE_OPEN";
  return h("section", { class: `card match${decided ? "" : " attention"}`, "data-match": match.matchId,
    "aria-labelledby": `match-${match.matchId}` },
    h("h2", { id: `match-${match.matchId}` }, t("dup.match", { id: match.matchId }), " ",
      h("span", { class: "count" }, t("dup.score", { score: number(match.score) }))),
    h("table", { class: "list compare" },
      h("thead", {}, h("tr", {}, h("td", {}), h("th", { scope: "col" }, t("dup.new")),
        h("th", { scope: "col" }, t("dup.earlier")))),
      h("tbody", {},
        h("tr", {}, h("th", { scope: "row" }, t("dup.case")), h("td", {}, side(match.caseSummary, match.personRef)),
          h("td", {}, side(match.otherCaseSummary, match.otherPersonRef))),
        row("name", "dup.name", names(a), names(b)),
        row("date_of_birth", "dup.born", a.dateOfBirth, b.dateOfBirth),
        row("document", "dup.document", a.travelDocument?.number, b.travelDocument?.number),
        row("phone", "dup.phone", a.phone, b.phone))),
    decided
      ? h("p", { class: "decided" }, t(match.state === "MATCH_STATE_CONFIRMED" ? "dup.confirmed" : "dup.dismissed",
        { by: match.decidedBy, when: when(match.decidedAtMs) }))
      : canWork() ? h("div", { class: "actions" },
        h("button", { class: "primary", "data-action": "confirm", onclick: () => decide(match, true, reload) },
          t("dup.confirm")),
        h("button", { "data-action": "dismiss", onclick: () => decide(match, false, reload) }, t("dup.dismiss")))
        : null);
}

async function decide(match, same, reload) {
  if (same) {
    const go = await confirmSend(t("dup.confirm_title"), [t("dup.confirm_link"), t("dup.confirm_tell")],
      t("dup.confirm"));
    if (!go) return;
  }
  try {
    await call("DecideMatch", { matchId: match.matchId,
      decision: same ? "MATCH_STATE_CONFIRMED" : "MATCH_STATE_DISMISSED" });
    announce(t(same ? "dup.done_confirmed" : "dup.done_dismissed", { id: match.matchId }));
    await reload();
  } catch (error) {
    document.querySelector(`[data-match="${match.matchId}"]`)?.append(errorBox(error));
  }
}
