// One case: everything known about it, its persons and their history, what was said between the
// agencies and how each message was delivered; and the work on it, each change confirmed first.

import { call, list, watch } from "./api.js";
import { h, fill, field, select, announce } from "./dom.js";
import { t, label, when, number } from "./i18n.js";
import { isNCCT, canWork, role, nodeName, errorBox, confirmSend, seesPersonalData } from "./app.js";
import { enums, outcomeText } from "./cases.js";
import { deadlineBadge, deadlineText } from "./queue.js";

const changeNames = ["statusChange", "stepChange", "personOutcomes", "note", "informationRequest",
  "informationProvided", "withdrawal", "attachment"];

export async function casePage(main, caseId) {
  const state = { view: null, selected: new Set() };
  // The case's facts, then the work on it (forms keep what is typed while the case changes
  // live), then its persons, history and deliveries.
  const data = h("div", { id: "case-data" });
  const work = h("div", { id: "case-work" });
  const detail = h("div", { id: "case-detail" });
  fill(main, data, work, detail);
  const load = async () => {
    state.view = await call("GetCase", { caseId });
    state.deadline = (await list("ListDeadlines", { caseId }))[0]?.deadline || null;
    state.matches = isNCCT() && seesPersonalData()
      ? (await call("ListMatches", { caseId, allStates: true, limit: 50 })).matches || [] : [];
    renderData(data, state);
  };
  await load();
  fill(work, ...workPanel(state, load));
  let pending = null;
  const stop = watch((event) => {
    if (event.caseId !== caseId) return;
    clearTimeout(pending);
    pending = setTimeout(async () => {
      await load();
      announce(t("case.changed"));
    }, 200);
  });
  return () => {
    clearTimeout(pending);
    stop();
  };
}

/** The persons named in the request and in later answers, by ref. */
function namedPersons(view) {
  const persons = new Map();
  for (const person of view.request?.persons || []) persons.set(person.personRef, person);
  for (const update of view.history || []) {
    for (const person of update.informationProvided?.addedPersons || []) persons.set(person.personRef, person);
  }
  return persons;
}

/** The open question from NCCT, if the case waits for the embassy's answer. */
function openQuestion(view) {
  if (view.status !== "CASE_STATUS_INFO_REQUESTED") return null;
  return [...(view.history || [])].reverse().find((u) => u.informationRequest) || null;
}

function renderData(data, state) {
  const detail = document.getElementById("case-detail");
  const view = state.view;
  const request = view.request || {};
  const location = request.location || {};
  const question = openQuestion(view);
  const definition = (term, value) => (value === undefined || value === null || value === "" ? null
    : [h("dt", {}, term), h("dd", {}, value)]);
  const coordinates = location.coordinates
    ? `${location.coordinates.latitude ?? 0}, ${location.coordinates.longitude ?? 0}` +
      (location.coordinates.accuracyM ? ` (±${location.coordinates.accuracyM} m)` : "")
    : "";
  fill(
    data,
    h("div", { class: "case-head" },
      h("h1", {}, t("case.heading", { reference: request.originReference || view.caseId.slice(0, 8) })),
      h("p", { class: "badges" },
        h("span", { class: `status ${view.status}`, id: "case-status" }, label(view.status)),
        view.step && view.step !== "BUSINESS_STEP_UNSPECIFIED" ? h("span", { class: "step" }, label(view.step)) : null,
        h("span", { class: `urgency ${request.urgency}` }, label(request.urgency)),
        h("span", { class: "kind" }, label(request.kind))),
      state.deadline ? deadlineLine(state) : null,
      matchLines(state),
      h("p", { class: "meta" }, t("case.id"), " ", h("code", {}, view.caseId))),
    view.personalDataPurgedAtMs && Number(view.personalDataPurgedAtMs)
      ? h("p", { class: "notice" }, t("case.purged", { when: when(view.personalDataPurgedAtMs) })) : null,
    question ? questionBox(question, state) : null,
    h("section", { "aria-labelledby": "about-h" },
      h("h2", { id: "about-h" }, t("case.about")),
      h("dl", { class: "facts" },
        definition(t("case.embassy"), nodeName(view.requestingNode)),
        definition(t("case.filed_by"), request.filedBy),
        definition(t("case.created"), when(view.createdAtMs)),
        definition(t("case.updated"), when(view.updatedAtMs)),
        definition(t("case.reference"), request.originReference),
        definition(t("case.contact"), request.contact),
        definition(t("case.province"), location.province),
        definition(t("case.district"), location.district),
        definition(t("case.site"), location.siteName),
        definition(t("case.address"), location.address),
        definition(t("case.coordinates"), coordinates),
        definition(t("case.location_detail"), location.detail),
        definition(t("case.summary"), request.summary),
        definition(t("case.indicators"), (request.indicators || []).map(label).join(", ")),
        definition(t("case.source"), request.source ? [label(request.source.kind), request.source.description]
          .filter(Boolean).join(": ") : ""),
        definition(t("case.consent"), request.consent ? [label(request.consent.basis), request.consent.note]
          .filter(Boolean).join(": ") : ""),
        definition(t("case.outcomes"), outcomeText(view.outcomeCounts)))),
  );
  fill(detail, personsSection(state), historySection(view), deliveriesSection(view, state));
  const ack = document.getElementById("ack-block");
  if (ack) ack.hidden = view.status !== "CASE_STATUS_RECEIVED";
}

/** NCCT: this case's persons who resemble, or were confirmed to be, persons of other cases. */
function matchLines(state) {
  const shown = (state.matches || []).filter((m) => m.state !== "MATCH_STATE_DISMISSED");
  if (!shown.length) return null;
  return h("ul", { class: "matches", id: "case-matches" }, shown.map((match) => {
    const here = match.caseId === state.view.caseId;
    const other = here ? match.otherCaseSummary : match.caseSummary;
    const values = { ref: here ? match.personRef : match.otherPersonRef,
      other: here ? match.otherPersonRef : match.personRef,
      case: other?.originReference || (here ? match.otherCaseId : match.caseId).slice(0, 8) };
    const link = h("a", { href: `#/case/${encodeURIComponent(here ? match.otherCaseId : match.caseId)}` }, values.case);
    return match.state === "MATCH_STATE_CONFIRMED"
      ? h("li", {}, t("case.linked", values), " ", link, " ", h("span", { class: "meta" },
        t("case.linked_by", { by: match.decidedBy })))
      : h("li", { class: "attention" }, t("case.possible_duplicate", values), " ", link, " · ",
        h("a", { href: "#/duplicates" }, t("queue.duplicates.review")));
  }));
}

/** The clock the case runs against; a supervisor may say why it was missed. */
function deadlineLine(state) {
  const deadline = state.deadline;
  const explain = role() === "STAFF_ROLE_SUPERVISOR" && deadline.level === "DEADLINE_LEVEL_OVERDUE";
  const reason = h("input", { name: "breach_reason", required: true, "aria-label": t("deadline.explain.label") });
  const form = h("form", { class: "inline no-print", id: "explain-form" }, reason,
    h("button", { type: "submit", class: "small" }, t("deadline.explain")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const explained = await call("ExplainBreach", { caseId: state.view.caseId, reason: reason.value.trim() });
      state.deadline = explained.deadline;
      renderData(document.getElementById("case-data"), state);
      announce(t("deadline.explained"));
    } catch (error) {
      announce(error.message);
    }
  });
  return h("p", { class: "deadline-line", id: "case-deadline" }, t("deadline.title"), " ", deadlineBadge(deadline), " ",
    deadlineText(deadline), explain && !deadline.breachReason ? form : null);
}

function questionBox(question, state) {
  const ours = !isNCCT();
  const answer = h("textarea", { id: "answer-text", rows: 4, required: true });
  answer.value = state.answerDraft || "";
  answer.addEventListener("input", () => { state.answerDraft = answer.value; });
  const form = h("form", { id: "answer-form" },
    field(t("case.answer"), answer),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("case.answer.send"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = answer.value.trim();
    if (!text) return answer.focus();
    const sent = await applyChange(state, { informationProvided: { text } }, t("case.answer.confirm"),
      [t("confirm.to", { to: nodeName("ncct") }), t("confirm.answer", { length: text.length })]);
    if (sent) state.answerDraft = "";
  });
  return h("section", { class: "question", role: "region", "aria-labelledby": "question-h", id: "open-question" },
    h("h2", { id: "question-h" }, ours ? t("case.question.ours") : t("case.question.theirs")),
    h("p", { class: "meta" }, t("history.by", {
      author: question.author || "", agency: nodeName(question.actorNode), when: when(question.occurredAtMs),
    })),
    h("ul", {}, (question.informationRequest.questions || []).map((q) => h("li", {}, q))),
    ours && canWork() ? form : null);
}

function personsSection(state) {
  const view = state.view;
  const named = namedPersons(view);
  const selectable = isNCCT() && canWork();
  const history = new Map();
  for (const update of view.history || []) {
    for (const outcome of update.personOutcomes?.outcomes || []) {
      if (!history.has(outcome.personRef)) history.set(outcome.personRef, []);
      history.get(outcome.personRef).push({ update, outcome });
    }
  }
  const all = h("input", { type: "checkbox", id: "select-all", "aria-label": t("persons.select_all") });
  all.checked = (view.persons || []).length > 0 && state.selected.size === (view.persons || []).length;
  all.addEventListener("change", () => {
    state.selected = all.checked ? new Set((view.persons || []).map((p) => p.personRef)) : new Set();
    for (const box of document.querySelectorAll("input[data-person]")) box.checked = all.checked;
    updateSelection(state);
  });
  const columns = [t("person.ref"), t("person.name"), t("person.native_name"), t("person.nationality"),
    t("person.dob"), t("person.sex"), t("person.document"), t("person.phone"), t("person.minor"),
    t("person.needs"), t("person.status"), t("person.note"), t("person.history")];
  return h("section", { "aria-labelledby": "persons-h" },
    h("h2", { id: "persons-h" }, t("case.persons"), " ",
      h("span", { class: "count" }, number((view.persons || []).length))),
    h("div", { class: "table-wrap" }, h("table", { class: "list persons", id: "persons-table" },
      h("thead", {}, h("tr", {}, selectable ? h("th", { scope: "col", class: "no-print" }, all) : null,
        columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, (view.persons || []).map((state_) => {
        const person = named.get(state_.personRef) || {};
        const document_ = person.travelDocument;
        const box = h("input", { type: "checkbox", "data-person": state_.personRef,
          "aria-label": t("persons.select", { ref: state_.personRef }) });
        box.checked = state.selected.has(state_.personRef);
        box.addEventListener("change", () => {
          if (box.checked) state.selected.add(state_.personRef);
          else state.selected.delete(state_.personRef);
          updateSelection(state);
        });
        const past = history.get(state_.personRef) || [];
        return h("tr", { "data-ref": state_.personRef },
          selectable ? h("td", { class: "no-print" }, box) : null,
          h("td", {}, state_.personRef), h("td", { class: "name" }, person.fullName || ""),
          h("td", {}, person.nativeName || ""), h("td", {}, person.nationality || ""),
          h("td", {}, person.dateOfBirth || ""), h("td", {}, person.sex ? label(person.sex) : ""),
          h("td", {}, document_ ? [document_.number, document_.issuingCountry,
            document_.withheld ? t("person.withheld") : ""].filter(Boolean).join(" · ") : ""),
          h("td", {}, person.phone || ""), h("td", {}, person.minor ? t("common.yes") : ""),
          h("td", {}, (person.needs || []).join(", ")),
          h("td", {}, h("span", { class: `pstatus ${state_.status}` }, label(state_.status))),
          h("td", {}, state_.note || ""),
          h("td", {}, past.length ? h("details", {}, h("summary", {}, t("person.changes", { count: past.length })),
            h("ol", {}, past.map(({ update, outcome }) => h("li", {},
              `${when(update.occurredAtMs)}: ${label(outcome.status)}`, outcome.note ? ` — ${outcome.note}` : "",
              ` (${update.author || nodeName(update.actorNode)})`)))) : ""));
      })))));
}

function updateSelection(state) {
  const count = document.getElementById("selection-count");
  if (count) count.textContent = t("persons.selected", { count: state.selected.size });
}

/** What a change says, in a line: for the history and the confirmation. */
function describe(update) {
  const change = changeNames.find((name) => update[name]) || "";
  switch (change) {
    case "statusChange":
      return t("change.status", { status: label(update.statusChange.toStatus) }) +
        (update.statusChange.reason ? ` — ${update.statusChange.reason}` : "");
    case "stepChange":
      return t("change.step", { step: label(update.stepChange.step) }) +
        (update.stepChange.note ? ` — ${update.stepChange.note}` : "");
    case "personOutcomes": {
      const counts = new Map();
      for (const o of update.personOutcomes.outcomes || []) counts.set(o.status, (counts.get(o.status) || 0) + 1);
      return t("change.outcomes", { list: [...counts].map(([s, n]) => `${n} ${label(s)}`).join(", ") });
    }
    case "note": return t("change.note", { text: update.note.text || "" });
    case "informationRequest":
      return t("change.question", { text: (update.informationRequest.questions || []).join(" / ") });
    case "informationProvided": {
      const added = (update.informationProvided.addedPersons || []).length;
      return t("change.answer", { text: update.informationProvided.text || "" }) +
        (added ? ` ${t("change.added", { count: added })}` : "");
    }
    case "withdrawal": return t("change.withdrawal", { text: update.withdrawal.reason || "" });
    case "attachment": {
      const a = update.attachment;
      return t("change.attachment", { name: a.fileName || "", type: label(a.contentType) }) +
        (a.personRef ? ` · ${a.personRef}` : "") + (a.caption ? ` — ${a.caption}` : "");
    }
    default: return t("change.unknown");
  }
}

function historySection(view) {
  const refused = view.refusedUpdates || [];
  return h("section", { "aria-labelledby": "history-h" },
    h("h2", { id: "history-h" }, t("case.history")),
    h("ol", { class: "history", id: "history" },
      h("li", {}, h("span", { class: "when" }, when(view.createdAtMs)), " ",
        h("strong", {}, nodeName(view.requestingNode)), " ", view.request?.filedBy ? `(${view.request.filedBy}) ` : "",
        t("history.filed")),
      (view.history || []).map((u) => h("li", { class: u.informationRequest ? "asked" : "" },
        h("span", { class: "when" }, when(u.occurredAtMs)), " ",
        h("strong", {}, nodeName(u.actorNode)), u.author ? ` (${u.author})` : "", ": ", describe(u),
        u.attachment && seesPersonalData() ? attachmentButton(view.caseId, u) : null))),
    refused.length ? h("div", { class: "refused" }, h("h3", {}, t("case.refused")),
      h("ul", {}, refused.map((r) =>
        h("li", {}, `#${r.sequence} ${nodeName(r.actorNode)}: ${r.code} — ${r.reason}`)))) : null);
}

/** Pictures opened on this page, by update id: they stay open when the case changes live. */
const openedPictures = new Map();

/** Opens one attachment: fetched when asked for (the case is read without the files), each look
 *  recorded by the node. Pictures show below the entry; a PDF opens in a new tab. */
function attachmentButton(caseId, update) {
  const picture = (shown) => h("figure", { class: "attachment" },
    h("img", { src: shown.url, alt: shown.caption || shown.fileName, class: "attachment-image" }),
    h("figcaption", {}, shown.fileName, shown.caption ? ` — ${shown.caption}` : ""));
  if (openedPictures.has(update.updateId)) return picture(openedPictures.get(update.updateId));
  const button = h("button", { class: "small attachment-open", "data-update": update.updateId, onclick: async () => {
    try {
      const file = await call("GetAttachment", { caseId, updateId: update.updateId });
      const bytes = Uint8Array.from(atob(file.data || ""), (c) => c.charCodeAt(0));
      const url = URL.createObjectURL(new Blob([bytes], { type: file.contentType }));
      if (file.contentType === "application/pdf") {
        window.open(url, "_blank", "noopener");
        return;
      }
      const shown = { url, fileName: file.fileName, caption: file.caption };
      openedPictures.set(update.updateId, shown);
      button.replaceWith(picture(shown));
    } catch (error) {
      button.after(errorBox(error));
    }
  } }, t("attachment.open"));
  return [" ", button];
}

/** Reads a chosen file and sends it as an attachment, after a confirmation naming it. */
async function sendAttachment(state, input, caption, person, to) {
  const file = input.files?.[0];
  const feedback = document.getElementById("work-feedback");
  if (!file) return false;
  const types = { "image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF" };
  if (file.size > 2 * 1024 * 1024) {
    fill(feedback, h("div", { class: "error", role: "alert" }, t("attachment.too_big", { name: file.name })));
    return false;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  const attachment = { contentType: types[file.type] ? file.type : "application/octet-stream", fileName: file.name,
    sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""), data: btoa(binary),
    caption: caption.value.trim(), personRef: person.value };
  return applyChange(state, { attachment }, t("work.attach"),
    [to, t("change.attachment", { name: file.name, type: types[file.type] || file.type || "?" })]);
}

function deliveriesSection(view, state) {
  const deliveries = view.deliveries || [];
  const mayCancel = ["STAFF_ROLE_SUPERVISOR", "STAFF_ROLE_OPERATOR"].includes(role());
  const settled = new Set(["DELIVERY_STATE_DELIVERED", "DELIVERY_STATE_CANCELLED", "DELIVERY_STATE_REJECTED"]);
  return h("section", { "aria-labelledby": "deliveries-h", class: "deliveries" },
    h("h2", { id: "deliveries-h" }, t("case.deliveries")),
    h("p", { class: "hint" }, t("case.deliveries.hint")),
    deliveries.length === 0 ? h("p", {}, t("case.deliveries.none")) : h("table", { class: "list", id: "deliveries" },
      h("thead", {}, h("tr", {}, [t("delivery.message"), t("delivery.to"), t("delivery.state"), t("delivery.attempts"),
        t("delivery.queued"), t("delivery.delivered"), t("delivery.error"), ""]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, deliveries.map((d) => h("tr", {},
        h("td", {}, h("code", {}, d.messageId.slice(0, 8))), h("td", {}, nodeName(d.peerNode)),
        h("td", {}, h("span", { class: `dstate ${d.state}` }, label(d.state))),
        h("td", { class: "num" }, number(d.attempts)),
        h("td", {}, when(d.queuedAtMs)), h("td", {}, when(d.deliveredAtMs)), h("td", {}, d.lastError || ""),
        h("td", { class: "no-print" }, mayCancel && !settled.has(d.state)
          ? h("button", { class: "small", onclick: () => cancelDelivery(d) }, t("delivery.cancel")) : ""))))));
}

/** Stops retrying one message, after the person confirmed it. */
async function cancelDelivery(delivery) {
  const what = [t("delivery.cancel.what", { to: nodeName(delivery.peerNode) })];
  if (!(await confirmSend(t("delivery.cancel.title"), what, t("delivery.cancel")))) return;
  try {
    const reason = "cancelled in the web console";
    await call("CancelDelivery", { messageId: delivery.messageId, peerNode: delivery.peerNode, reason });
    announce(t("delivery.cancelled"));
  } catch (error) {
    announce(error.message);
  }
}

/** Sends one change after the person confirmed what goes to the other agency. */
async function applyChange(state, change, title, lines) {
  if (!(await confirmSend(title, lines))) return false;
  const feedback = document.getElementById("work-feedback");
  try {
    const receipt = await call("ApplyChange", { caseId: state.view.caseId, ...change });
    state.view = await call("GetCase", { caseId: state.view.caseId });
    renderData(document.getElementById("case-data"), state);
    fill(feedback, h("p", { class: "ok", role: "status" }, t("work.sent", { status: label(receipt.status) })));
    announce(t("work.sent", { status: label(receipt.status) }));
    return true;
  } catch (error) {
    fill(feedback, errorBox(error));
    return false;
  }
}

function workPanel(state) {
  const other = isNCCT() ? nodeName(state.view.requestingNode) : nodeName("ncct");
  const to = t("confirm.to", { to: other });
  const panel = [h("div", { id: "work-feedback", "aria-live": "polite" })];
  const tools = h("div", { class: "actions no-print" },
    seesPersonalData()
      ? h("button", { id: "export-csv", onclick: () => exportPersons(state) }, t("case.export"))
      : null,
    h("button", { onclick: () => window.print() }, t("case.print")));
  panel.push(tools);
  if (!canWork()) return panel;
  const forms = [];
  const form = (id, title, controls, submit, onSubmit) => {
    const element = h("form", { id, class: "work-form" }, h("h3", {}, title), controls,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submit)));
    element.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await onSubmit()) element.reset();
    });
    forms.push(element);
  };
  const supervisor = role() === "STAFF_ROLE_SUPERVISOR";
  if (isNCCT()) {
    forms.push(h("div", { class: "work-form", id: "ack-block", hidden: state.view.status !== "CASE_STATUS_RECEIVED" },
      h("h3", {}, t("work.acknowledge")),
      h("button", { class: "primary", id: "acknowledge", onclick: () => applyChange(state,
        { statusChange: { toStatus: "CASE_STATUS_ACKNOWLEDGED" } }, t("work.acknowledge"),
        [to, t("change.status", { status: label("CASE_STATUS_ACKNOWLEDGED") })]) }, t("work.acknowledge.button"))));
    const outcome = select("status", enums.personStatus.map((s) => [s, label(s)]));
    outcome.id = "bulk-status";
    const note = h("input", { name: "note", id: "bulk-note" });
    form("outcomes-form", t("work.outcomes"), [
      h("p", { id: "selection-count", "aria-live": "polite" }, t("persons.selected", { count: state.selected.size })),
      field(t("work.outcomes.status"), outcome), field(t("work.outcomes.note"), note)],
      t("work.outcomes.send"), async () => {
        if (state.selected.size === 0) {
          const none = h("div", { class: "error", role: "alert" }, t("work.outcomes.none"));
          fill(document.getElementById("work-feedback"), none);
          return false;
        }
        const refs = [...state.selected];
        const sent = await applyChange(state, { personOutcomes: { outcomes: refs.map((personRef) =>
          ({ personRef, status: outcome.value, note: note.value.trim() })) } }, t("work.outcomes"),
        [to, t("confirm.outcomes", { count: refs.length, status: label(outcome.value) }), refs.join(", ")]);
        if (sent) {
          state.selected.clear();
          renderData(document.getElementById("case-data"), state);
          updateSelection(state);
        }
        return sent;
      });
    const csv = h("input", { type: "file", accept: ".csv,text/csv", id: "outcomes-file" });
    const csvControls = [field(t("work.outcomes.csv.file"), csv, t("work.outcomes.csv.hint")),
      h("div", { id: "outcomes-problems" })];
    form("outcomes-csv-form", t("work.outcomes.csv"), csvControls, t("work.outcomes.csv.read"), async () => {
      const file = csv.files[0];
      if (!file) return false;
      const reading = await call("ReadTable", { kind: "TABLE_KIND_OUTCOMES", csv: await file.text() });
      if ((reading.problems || []).length) {
        fill(document.getElementById("outcomes-problems"), problemList(reading.problems));
        return false;
      }
      fill(document.getElementById("outcomes-problems"));
      return applyChange(state, { personOutcomes: { outcomes: reading.outcomes } }, t("work.outcomes"),
        [to, t("confirm.outcomes.csv", { count: reading.outcomes.length })]);
    });
    const step = select("step", enums.step.map((s) => [s, label(s)]));
    const stepNote = h("input", { name: "note" });
    form("step-form", t("work.step"), [field(t("work.step.label"), step), field(t("work.step.note"), stepNote)],
      t("work.step.send"), () => applyChange(state, { stepChange: { step: step.value, note: stepNote.value.trim() } },
        t("work.step"), [to, t("change.step", { step: label(step.value) })]));
    const questions = h("textarea", { rows: 3, id: "questions", required: true });
    form("question-form", t("work.question"), [field(t("work.question.label"), questions, t("work.question.hint"))],
      t("work.question.send"), () => {
        const list = questions.value.split("\n").map((q) => q.trim()).filter(Boolean);
        return applyChange(state, { informationRequest: { questions: list } }, t("work.question"),
          [to, ...list]);
      });
    const statuses = ["CASE_STATUS_IN_PROGRESS", "CASE_STATUS_ON_HOLD", "CASE_STATUS_COMPLETED", "CASE_STATUS_FAILED",
      ...(supervisor ? ["CASE_STATUS_DECLINED", "CASE_STATUS_ENTERED_IN_ERROR"] : [])];
    const status = select("to_status", statuses.map((s) => [s, label(s)]));
    const reason = h("input", { name: "reason" });
    form("status-form", t("work.status"),
      [field(t("work.status.label"), status), field(t("work.status.reason"), reason)], t("work.status.send"),
      () => applyChange(state, { statusChange: { toStatus: status.value, reason: reason.value.trim() } },
        t("work.status"), [to, t("change.status", { status: label(status.value) })]));
  } else if (supervisor) {
    const reason = h("input", { name: "reason", required: true });
    form("withdraw-form", t("work.withdraw"), [field(t("work.withdraw.reason"), reason)], t("work.withdraw.send"),
      () => applyChange(state, { withdrawal: { reason: reason.value.trim() } }, t("work.withdraw"),
        [to, t("change.withdrawal", { text: reason.value.trim() })]));
  }
  const note = h("textarea", { rows: 3, id: "note-text", required: true });
  form("note-form", t("work.note"), [field(t("work.note.label"), note)], t("work.note.send"),
    () => applyChange(state, { note: { text: note.value.trim() } }, t("work.note"),
      [to, t("change.note", { text: note.value.trim() })]));
  const fileInput = h("input", { type: "file", id: "attachment-file", required: true,
    accept: ".jpg,.jpeg,.png,.pdf,image/jpeg,image/png,application/pdf" });
  const caption = h("input", { name: "caption", id: "attachment-caption" });
  const person = select("person", [["", t("attachment.whole_case")],
    ...[...namedPersons(state.view).keys()].map((ref) => [ref, ref])]);
  form("attach-form", t("work.attach"), [field(t("attachment.file"), fileInput, t("attachment.hint")),
    field(t("attachment.caption"), caption), field(t("attachment.person"), person)], t("work.attach.send"),
  () => sendAttachment(state, fileInput, caption, person, to));
  panel.push(h("section", { class: "work no-print", "aria-labelledby": "work-h" },
    h("h2", { id: "work-h" }, t("work.title")), forms));
  return panel;
}

export function problemList(problems) {
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, t("table.problems", { count: problems.length })),
    h("ul", { class: "problems" }, problems.map((p) => h("li", {}, !p.line ? p.problem : p.column
      ? t("table.problem", { line: p.line, column: p.column, problem: p.problem })
      : t("table.problem.line", { line: p.line, problem: p.problem })))));
}

async function exportPersons(state) {
  try {
    const file = await call("ExportPersons", { caseId: state.view.caseId });
    const blob = new Blob([file.text], { type: "text/csv" });
    const link = h("a", { href: URL.createObjectURL(blob), download: file.fileName });
    document.body.append(link);
    link.click();
    link.remove();
    announce(t("case.exported", { count: Number(file.rows || 0) }));
  } catch (error) {
    announce(error.message);
  }
}

