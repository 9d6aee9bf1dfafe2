// Reports: figures for a period, by embassy, kind, urgency and status, persons' outcomes, and how
// fast cases were taken up and completed. Counts only; the CSV is made by the node.

import { call } from "./api.js";
import { h, fill, field, select } from "./dom.js";
import { t, label, number } from "./i18n.js";
import { session, isNCCT, nodeName, errorBox } from "./app.js";

const day = 86400000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

export async function reportsPage(main, _, query) {
  const since = query.get("from") || isoDay(Date.now() - 30 * day);
  const until = query.get("to") || "";
  const embassies = (session.node?.peers || []).filter((p) => p.nodeId !== "ncct");
  const form = h("form", { class: "filters", id: "report-form" },
    field(t("report.from"), h("input", { type: "date", name: "from", value: since, required: true })),
    field(t("report.to"), h("input", { type: "date", name: "to", value: until })),
    isNCCT() ? field(t("filter.embassy"), select("embassy", [["", t("filter.any")],
      ...embassies.map((p) => [p.nodeId, p.displayName || p.nodeId])], query.get("embassy"))) : null,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("report.show"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    location.hash = `#/reports?${params}`;
  });
  const body = h("div", { id: "report" });
  fill(main, h("h1", {}, t("report.title")), h("p", { class: "lead" }, t("report.lead")), form, body);
  const request = { sinceMs: String(new Date(`${since}T00:00:00Z`).getTime()) };
  if (until) request.untilMs = String(new Date(`${until}T00:00:00Z`).getTime() + day);
  if (query.get("embassy")) request.requestingNode = query.get("embassy");
  try {
    fill(body, ...render(await call("GetReport", request)), statisticsButton(request));
  } catch (error) {
    fill(body, errorBox(error));
  }
}

/** The anonymised export for national statistics (no names; small counts hidden by the node). */
function statisticsButton(request) {
  const note = h("span", { class: "hint", id: "statistics-hint" }, t("report.statistics_hint"));
  const button = h("button", { id: "statistics-csv", "aria-describedby": "statistics-hint", onclick: async () => {
    try {
      const file = await call("ExportStatistics", { sinceMs: request.sinceMs, untilMs: request.untilMs });
      download(file.text, file.fileName);
    } catch (error) {
      button.after(errorBox(error));
    }
  } }, t("report.statistics"));
  return h("div", { class: "actions no-print" }, button, " ", note);
}

function download(text, name) {
  const link = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

function render(report) {
  const table = (title, counts, name) => counts?.length ? h("section", {},
    h("h2", {}, title),
    h("table", { class: "list report" },
      h("thead", {}, h("tr", {},
        ["", t("report.cases"), t("report.persons")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, counts.map((c) => h("tr", {}, h("th", { scope: "row" }, name(c.key)),
        h("td", { class: "num" }, c.cases === "" ? "" : number(c.cases)),
        h("td", { class: "num" }, number(c.persons))))))) : null;
  const hours = (ms) => Number(ms || 0) < 3600000
    ? t("report.minutes", { minutes: Math.round(Number(ms || 0) / 60000) })
    : t("report.hours", { hours: (Number(ms) / 3600000).toFixed(1) });
  const duration = (title, d) => h("p", {}, h("strong", {}, title, ": "), Number(d?.cases || 0)
    ? t("report.duration", { count: Number(d.cases), median: hours(d.medianMs), p90: hours(d.p90Ms) })
    : t("report.none"));
  const csvButton = h("button", { id: "report-csv", onclick: () =>
    download(report.csv, `casebridge-report-${new Date().toISOString().slice(0, 10)}.csv`) }, t("report.csv"));
  const statusLabel = (key) => label(`CASE_STATUS_${key.toUpperCase()}`);
  return [
    h("p", { class: "total", id: "report-total" },
      t("report.total", { cases: Number(report.cases || 0), persons: Number(report.persons || 0) })),
    duration(t("report.taken_up"), report.toAcknowledgement),
    duration(t("report.completed"), report.toCompletion),
    h("p", {}, t("report.deadlines",
      { overdue: Number(report.overdueNow || 0), soon: Number(report.dueSoonNow || 0) })),
    h("div", { class: "actions no-print" }, csvButton, h("button", { onclick: () => window.print() }, t("case.print"))),
    h("div", { class: "report-tables" },
      table(t("report.by_embassy"), report.byEmbassy, nodeName),
      table(t("report.by_kind"), report.byKind, (k) => label(`REQUEST_KIND_${k.toUpperCase()}`)),
      table(t("report.by_urgency"), report.byUrgency, (k) => label(`URGENCY_${k.toUpperCase()}`)),
      table(t("report.by_status"), report.byStatus, statusLabel),
      table(t("report.outcomes"),
        (report.personOutcomes || []).map((o) => ({ key: o.status, cases: "", persons: o.count })), (k) => label(k))),
  ];
}
