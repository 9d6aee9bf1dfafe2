// The home page: what needs this person now, with counts, kept current as events arrive.

import { call, list, watch } from "./api.js";
import { h, fill } from "./dom.js";
import { t, label, ago, when, number } from "./i18n.js";
import { session, isNCCT, seesPersonalData, nodeName, errorBox } from "./app.js";
import { caseLink, openStatuses } from "./cases.js";

const quietDays = 7;

/** The queue's cards: what each one lists, and the list screen that shows all of it. */
function cards() {
  const quietSince = Date.now() - quietDays * 86400000;
  const result = [];
  if (isNCCT()) {
    result.push({ key: "queue.new", filter: { statuses: ["CASE_STATUS_RECEIVED"], order: "CASE_ORDER_URGENCY" },
      link: "cases?status=CASE_STATUS_RECEIVED&order=CASE_ORDER_URGENCY", urgent: true });
    result.push({ key: "queue.answered", filter: { statuses: ["CASE_STATUS_ACKNOWLEDGED"] },
      link: "cases?status=CASE_STATUS_ACKNOWLEDGED" });
  } else {
    result.push({ key: "queue.questions", filter: { statuses: ["CASE_STATUS_INFO_REQUESTED"] },
      link: "cases?status=CASE_STATUS_INFO_REQUESTED", urgent: true });
  }
  result.push({
    key: "queue.quiet",
    filter: { statuses: openStatuses, updatedUntilMs: String(quietSince), order: "CASE_ORDER_UPDATED_OLDEST" },
    link: `cases?status=open&quiet=${quietDays}`,
  });
  return result;
}

export async function queuePage(main) {
  const body = h("div", { class: "queue", id: "queue" });
  fill(main, h("h1", {}, t("queue.title")), h("p", { class: "lead" }, t("queue.lead")), body);
  let pending = null;
  const refresh = async () => {
    try {
      fill(body, ...(await render()));
    } catch (error) {
      fill(body, errorBox(error));
    }
  };
  await refresh();
  const stop = watch(() => {
    clearTimeout(pending);
    pending = setTimeout(refresh, 300);
  });
  return () => {
    clearTimeout(pending);
    stop();
  };
}

async function render() {
  const sections = [];
  for (const card of cards()) {
    const page = await call("FindCases", { ...card.filter, limit: 5 });
    sections.push(caseCard(card, page));
  }
  if (isNCCT() && seesPersonalData()) sections.splice(1, 0, await duplicatesCard());
  sections.unshift(await deadlineCard());
  sections.push(await inboxCard());
  sections.push(await deliveryCard());
  return sections;
}

function caseCard(card, page) {
  const total = Number(page.total || 0);
  return h(
    "section",
    { class: `card${card.urgent && total ? " attention" : ""}`, "aria-labelledby": `${card.key}-h`,
      "data-card": card.key },
    h("h2", { id: `${card.key}-h` }, t(card.key), " ", h("span", { class: "count" }, number(total))),
    total === 0
      ? h("p", { class: "empty" }, t(`${card.key}.none`))
      : h("ul", { class: "items" }, (page.cases || []).map((summary) =>
          h("li", {}, caseLink(summary), " ", h("span", { class: "meta" },
            [label(summary.kind), label(summary.urgency), label(summary.status), nodeName(summary.requestingNode),
              t("queue.changed", { when: ago(summary.updatedAtMs) })].filter(Boolean).join(" · "))))),
    total > 5 ? h("a", { href: `#/${card.link}` }, t("queue.all", { count: total })) : null,
  );
}

async function inboxCard() {
  const entries = await list("ListInbox", { unreadOnly: true, limit: 100 });
  const shown = entries.slice(0, 8);
  return h(
    "section",
    { class: `card${entries.length ? " attention" : ""}`, "aria-labelledby": "inbox-h", "data-card": "queue.unread" },
    h("h2", { id: "inbox-h" }, t("queue.unread"), " ",
      h("span", { class: "count" }, number(entries.length) + (entries.length >= 100 ? "+" : ""))),
    entries.length === 0
      ? h("p", { class: "empty" }, t("queue.unread.none"))
      : h("ul", { class: "items" }, shown.map((entry) =>
          h("li", {}, entry.summary ? caseLink(entry.summary) : entry.caseId, " ",
            h("span", { class: "meta" },
              [inboxWhat(entry), nodeName(entry.fromNode), ago(entry.receivedAtMs)].join(" · "))))),
    entries.length ? h("button", { class: "link", id: "mark-all-read", onclick: async (event) => {
      await call("MarkRead", { all: true });
      event.target.closest("section").replaceWith(await inboxCard());
    } }, t("queue.unread.mark_all")) : null,
  );
}

/** NCCT: persons who seem to be reported twice, waiting for someone to compare and decide. */
async function duplicatesCard() {
  const page = await call("ListMatches", { limit: 5 });
  const total = Number(page.total || 0);
  return h(
    "section",
    { class: `card${total ? " attention" : ""}`, "aria-labelledby": "duplicates-h", "data-card": "queue.duplicates" },
    h("h2", { id: "duplicates-h" }, t("queue.duplicates"), " ", h("span", { class: "count" }, number(total))),
    total === 0
      ? h("p", { class: "empty" }, t("queue.duplicates.none"))
      : h("ul", { class: "items" }, (page.matches || []).map((match) => h("li", {},
          match.caseSummary ? caseLink(match.caseSummary) : match.caseId, " ~ ",
          match.otherCaseSummary ? caseLink(match.otherCaseSummary) : match.otherCaseId, " ",
          h("span", { class: "meta" }, t("dup.score", { score: number(match.score) }))))),
    total ? h("a", { href: "#/duplicates" }, t("queue.duplicates.review")) : null,
  );
}

/** Cases past their deadline or at three quarters of it, the most urgent first. */
async function deadlineCard() {
  const entries = await list("ListDeadlines", { minLevel: "DEADLINE_LEVEL_THREE_QUARTERS", limit: 100 });
  const overdue = entries.filter((e) => e.deadline.level === "DEADLINE_LEVEL_OVERDUE").length;
  return h(
    "section",
    { class: `card${entries.length ? " attention" : ""}`, "aria-labelledby": "deadlines-h",
      "data-card": "queue.deadlines" },
    h("h2", { id: "deadlines-h" }, t("queue.deadlines"), " ", h("span", { class: "count" }, number(entries.length))),
    entries.length === 0
      ? h("p", { class: "empty" }, t("queue.deadlines.none"))
      : [h("p", {}, t("queue.deadlines.overdue", { count: overdue })),
        h("ul", { class: "items" }, entries.slice(0, 8).map((entry) =>
          h("li", {}, caseLink(entry.summary), " ", deadlineBadge(entry.deadline), " ",
            h("span", { class: "meta" }, deadlineText(entry.deadline)))))],
  );
}

/** "Overdue", "75 %": how far a case's clock has run. */
export function deadlineBadge(deadline) {
  return h("span", { class: `deadline ${deadline.level || "DEADLINE_LEVEL_ON_TIME"}` },
    label(deadline.level || "DEADLINE_LEVEL_ON_TIME"));
}

/** "Acknowledge, by ncct, due 23 Nov, 14:00". */
export function deadlineText(deadline) {
  const what = t("deadline.what",
    { clock: label(deadline.clock), who: nodeName(deadline.waitingOn), due: when(deadline.dueAtMs) });
  if (!deadline.breachReason) return what;
  return `${what} — ${t("deadline.reason", { reason: deadline.breachReason, by: deadline.breachReasonBy })}`;
}

/** What an inbox entry is: a new request, a question, an answer, outcomes… never only "update". */
function inboxWhat(entry) {
  if (entry.kind === "INBOX_ENTRY_KIND_REQUEST") return t("inbox.request");
  if (entry.refusal) return t("inbox.refused");
  const update = entry.update || {};
  for (const change of ["statusChange", "stepChange", "personOutcomes", "note", "informationRequest",
    "informationProvided", "withdrawal"]) {
    if (update[change]) {
      if (change === "statusChange") return t("inbox.statusChange", { status: label(update.statusChange.toStatus) });
      if (change === "stepChange") return t("inbox.stepChange", { step: label(update.stepChange.step) });
      if (change === "personOutcomes") {
        return t("inbox.personOutcomes", { count: (update.personOutcomes.outcomes || []).length });
      }
      return t(`inbox.${change}`);
    }
  }
  return t("inbox.update");
}

async function deliveryCard() {
  const status = await call("GetStatus");
  session.node = status;
  const owed = (status.peers || []).filter((p) => Number(p.outboxDepth || 0) > 0);
  const failing = owed.filter((p) => Number(p.failingSinceMs || 0) > 0 || !p.reachable);
  const warnings = status.warnings || [];
  return h(
    "section",
    { class: `card${failing.length || warnings.length ? " attention" : ""}`, "aria-labelledby": "deliveries-h",
      "data-card": "queue.deliveries" },
    h("h2", { id: "deliveries-h" }, t("queue.deliveries"), " ", h("span", { class: "count" }, number(failing.length))),
    owed.length === 0
      ? h("p", { class: "empty" }, t("queue.deliveries.none"))
      : h("ul", { class: "items" }, owed.map((peer) => h("li", {},
          h("a", { href: "#/node" }, peer.displayName || peer.nodeId), " ",
          h("span", { class: "meta" }, t("queue.deliveries.owed", { count: Number(peer.outboxDepth) }),
            peer.failingSinceMs ? ` · ${t("queue.deliveries.failing", { when: ago(peer.failingSinceMs) })}` : "")))),
    warnings.length ? h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, w))) : null,
    seesPersonalData() ? null : h("p", { class: "hint" }, t("queue.operator")),
  );
}

