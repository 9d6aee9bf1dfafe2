// Cases: filters, order, real pages with the total, and a search box for persons.

import { call, list } from "./api.js";
import { h, fill, field, select } from "./dom.js";
import { t, label, when, number } from "./i18n.js";
import { session, isNCCT, seesPersonalData, nodeName, errorBox } from "./app.js";

export const enums = {
  status: ["CASE_STATUS_SUBMITTED", "CASE_STATUS_RECEIVED", "CASE_STATUS_ACKNOWLEDGED", "CASE_STATUS_IN_PROGRESS",
    "CASE_STATUS_INFO_REQUESTED", "CASE_STATUS_ON_HOLD", "CASE_STATUS_COMPLETED", "CASE_STATUS_FAILED",
    "CASE_STATUS_DECLINED", "CASE_STATUS_WITHDRAWN", "CASE_STATUS_ENTERED_IN_ERROR"],
  step: ["BUSINESS_STEP_LOCATING", "BUSINESS_STEP_RESCUE_PLANNED", "BUSINESS_STEP_RESCUED",
    "BUSINESS_STEP_POLICE_INTERVIEW", "BUSINESS_STEP_IDENTIFIED", "BUSINESS_STEP_SHELTERED",
    "BUSINESS_STEP_DOCUMENTS_IN_PROCESS", "BUSINESS_STEP_REPATRIATION_SCHEDULED"],
  kind: ["REQUEST_KIND_RESCUE", "REQUEST_KIND_WELFARE_CHECK", "REQUEST_KIND_REPATRIATION", "REQUEST_KIND_TRACE"],
  urgency: ["URGENCY_ROUTINE", "URGENCY_URGENT", "URGENCY_IMMEDIATE"],
  order: ["CASE_ORDER_UNSPECIFIED", "CASE_ORDER_UPDATED_OLDEST", "CASE_ORDER_CREATED_NEWEST",
    "CASE_ORDER_CREATED_OLDEST", "CASE_ORDER_URGENCY"],
  personStatus: ["PERSON_STATUS_PENDING", "PERSON_STATUS_LOCATED", "PERSON_STATUS_RESCUED",
    "PERSON_STATUS_SHELTERED", "PERSON_STATUS_DOCUMENTS_IN_PROCESS", "PERSON_STATUS_REPATRIATED",
    "PERSON_STATUS_NOT_FOUND", "PERSON_STATUS_DECLINED_ASSISTANCE"],
};
/** Received, acknowledged, in progress, information requested, on hold: work goes on. */
export const openStatuses = enums.status.slice(1, 6);
const pageSize = 25;

/** A link to a case: its embassy reference when it has one, else the start of its id. */
export function caseLink(summary) {
  const name = summary.originReference || summary.caseId.slice(0, 8);
  return h("a", { href: `#/case/${encodeURIComponent(summary.caseId)}`, class: "case-link" }, name);
}

/** "3 rescued, 9 pending". */
export function outcomeText(counts) {
  return (counts || []).map((c) => `${number(c.count)} ${label(c.status)}`).join(", ");
}

function dayStart(value) {
  return value ? String(new Date(`${value}T00:00:00`).getTime()) : undefined;
}

export async function casesPage(main, _, query) {
  const results = h("div", { id: "case-results" });
  const form = filterForm(query);
  const search = seesPersonalData() ? searchForm(query) : null;
  fill(main, h("h1", {}, t("cases.title")), search, form, results);
  if (query.get("q") && search) await showSearch(results, query.get("q"));
  else await showPage(results, query);
}

function filterForm(query) {
  const any = [["", t("filter.any")]];
  const statusOptions = [...any, ["open", t("filter.open")], ...enums.status.map((s) => [s, label(s)])];
  const embassies = (session.node?.peers || []).filter((p) => p.nodeId !== "ncct");
  const form = h(
    "form",
    { class: "filters", id: "filters", role: "search", "aria-label": t("filter.title") },
    field(t("filter.status"), select("status", statusOptions, query.get("status"))),
    field(t("filter.step"), select("step", [...any, ...enums.step.map((s) => [s, label(s)])], query.get("step"))),
    field(t("filter.kind"), select("kind", [...any, ...enums.kind.map((s) => [s, label(s)])], query.get("kind"))),
    field(t("filter.urgency"),
      select("urgency", [...any, ...enums.urgency.map((s) => [s, label(s)])], query.get("urgency"))),
    isNCCT() ? field(t("filter.embassy"), select("embassy",
      [...any, ...embassies.map((p) => [p.nodeId, p.displayName || p.nodeId])], query.get("embassy"))) : null,
    field(t("filter.from"), h("input", { type: "date", name: "from", value: query.get("from") || "" })),
    field(t("filter.to"), h("input", { type: "date", name: "to", value: query.get("to") || "" })),
    field(t("filter.order"), select("order", enums.order.map((s) => [s, t(`order.${s}`)]), query.get("order"))),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("filter.apply")),
      h("a", { href: "#/cases", class: "button" }, t("filter.clear"))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    location.hash = `#/cases?${params}`;
  });
  return form;
}

function searchForm(query) {
  const input = h("input", { type: "search", name: "q", value: query.get("q") || "", autocomplete: "off" });
  const form = h("form", { class: "search", role: "search", id: "person-search" },
    field(t("search.label"), input, t("search.hint")),
    h("button", { type: "submit" }, t("search.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = input.value.trim() ? `#/cases?q=${encodeURIComponent(input.value.trim())}` : "#/cases";
  });
  return form;
}

async function showSearch(results, text) {
  try {
    const hits = await list("Search", { query: text, limit: 200 });
    fill(results,
      h("h2", {}, t("search.results", { count: hits.length })),
      hits.length === 0 ? h("p", {}, t("search.none")) : h("table", { class: "list" },
        h("thead", {}, h("tr", {}, [t("person.name"), t("person.dob"), t("person.status"), t("case.title"),
          t("case.embassy"), t("case.status")].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, hits.map((hit) => h("tr", {},
          h("td", {}, hit.fullName), h("td", {}, hit.dateOfBirth || ""), h("td", {}, label(hit.status)),
          h("td", {}, caseLink(hit.summary), " ", hit.personRef), h("td", {}, nodeName(hit.summary.requestingNode)),
          h("td", {}, label(hit.summary.status)))))));
  } catch (error) {
    fill(results, errorBox(error));
  }
}

async function showPage(results, query) {
  const offset = Math.max(0, Number(query.get("offset") || 0) | 0);
  const request = { offset, limit: pageSize, order: query.get("order") || undefined };
  const status = query.get("status");
  if (status === "open") request.statuses = openStatuses;
  else if (status) request.statuses = [status];
  for (const [param, name] of [["step", "steps"], ["kind", "kinds"], ["urgency", "urgencies"]]) {
    if (query.get(param)) request[name] = [query.get(param)];
  }
  if (query.get("embassy")) request.requestingNode = query.get("embassy");
  request.createdSinceMs = dayStart(query.get("from"));
  if (query.get("to")) request.createdUntilMs = String(Number(dayStart(query.get("to"))) + 86400000);
  if (query.get("quiet")) request.updatedUntilMs = String(Date.now() - Number(query.get("quiet")) * 86400000);
  try {
    const page = await call("FindCases", request);
    const total = Number(page.total || 0);
    const cases = page.cases || [];
    const pageLink = (start) => {
      const params = new URLSearchParams(query);
      params.set("offset", String(start));
      return `#/cases?${params}`;
    };
    fill(results,
      h("p", { class: "total", id: "case-total", "aria-live": "polite" }, total === 0 ? t("cases.none")
        : t("cases.range", { from: offset + 1, to: offset + cases.length, total })),
      cases.length ? h("table", { class: "list", id: "case-table" },
        h("caption", { class: "visually-hidden" }, t("cases.title")),
        h("thead", {}, h("tr", {}, [t("case.reference"), t("case.embassy"), t("case.kind"), t("case.urgency"),
          t("case.status"), t("case.step"), t("case.persons"), t("case.outcomes"), t("case.updated")]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, cases.map((c) => h("tr", { class: c.urgency === "URGENCY_IMMEDIATE" ? "immediate" : "" },
          h("td", {}, caseLink(c)), h("td", {}, nodeName(c.requestingNode)), h("td", {}, label(c.kind)),
          h("td", {}, label(c.urgency)), h("td", {}, h("span", { class: `status ${c.status}` }, label(c.status))),
          h("td", {}, label(c.step)), h("td", { class: "num" }, number(c.personCount)),
          h("td", {}, outcomeText(c.outcomeCounts)), h("td", {}, when(c.updatedAtMs)))))) : null,
      h("nav", { class: "pager", "aria-label": t("cases.pages") },
        offset > 0 ? h("a", { href: pageLink(Math.max(0, offset - pageSize)), rel: "prev", class: "button" },
          t("cases.previous")) : null,
        offset + cases.length < total
          ? h("a", { href: pageLink(offset + pageSize), rel: "next", class: "button", id: "next-page" },
            t("cases.next"))
          : null));
  } catch (error) {
    fill(results, errorBox(error));
  }
}
