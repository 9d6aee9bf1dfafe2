// Filing a request (embassies): a form for one or a few persons, or a CSV file for a batch that
// is checked whole, every problem listed by line and column, before anything is sent. What is
// typed is kept as a draft in this tab (sessionStorage: gone when the tab closes) until it is sent.

import { call } from "./api.js";
import { h, fill, field, select, announce } from "./dom.js";
import { t, label, number } from "./i18n.js";
import { errorBox, confirmSend, nodeName } from "./app.js";
import { enums } from "./cases.js";
import { problemList } from "./case.js";

const draftKey = "casebridge.draft.request";
const indicators = ["CONTROL_INDICATOR_DOCUMENTS_WITHHELD", "CONTROL_INDICATOR_DEBT_BONDAGE",
  "CONTROL_INDICATOR_PHYSICAL_VIOLENCE", "CONTROL_INDICATOR_DETENTION", "CONTROL_INDICATOR_THREATS",
  "CONTROL_INDICATOR_WAGES_WITHHELD", "CONTROL_INDICATOR_FORCED_CRIMINALITY", "CONTROL_INDICATOR_SEXUAL_EXPLOITATION",
  "CONTROL_INDICATOR_ISOLATION", "CONTROL_INDICATOR_EXCESSIVE_HOURS"];
const sources = ["SOURCE_KIND_VICTIM", "SOURCE_KIND_FAMILY", "SOURCE_KIND_NGO", "SOURCE_KIND_MEDIA",
  "SOURCE_KIND_AGENCY", "SOURCE_KIND_OTHER"];
const consents = ["CONSENT_BASIS_PERSON", "CONSENT_BASIS_GUARDIAN", "CONSENT_BASIS_VITAL_INTEREST"];

const input = (name, attributes = {}) => h("input", { name, ...attributes });

export async function filePage(main) {
  const state = { persons: 0, fromFile: null };
  const personsBox = h("div", { id: "persons-editor" });
  const fileBox = h("div", { id: "persons-file" });
  const feedback = h("div", { id: "file-feedback", "aria-live": "polite" });
  const form = h("form", { id: "request-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, t("file.what")),
      field(t("case.kind"), select("kind", enums.kind.map((k) => [k, label(k)]))),
      field(t("case.urgency"), select("urgency", enums.urgency.map((u) => [u, label(u)]), "URGENCY_URGENT")),
      field(t("case.reference"), input("origin_reference"), t("file.reference.hint")),
      field(t("case.contact"), input("contact"), t("file.contact.hint")),
      field(t("case.summary"), h("textarea", { name: "summary", rows: 4 }), t("file.summary.hint"))),
    h("fieldset", {}, h("legend", {}, t("file.where")),
      field(t("case.province"), input("province")), field(t("case.district"), input("district")),
      field(t("case.site"), input("site_name")), field(t("case.address"), input("address")),
      field(t("file.latitude"), input("latitude", { inputmode: "decimal" })),
      field(t("file.longitude"), input("longitude", { inputmode: "decimal" })),
      field(t("case.location_detail"), h("textarea", { name: "location_detail", rows: 2 }))),
    h("fieldset", { class: "checks" }, h("legend", {}, t("case.indicators")),
      indicators.map((value) =>
        h("label", { class: "check" }, input("indicators", { type: "checkbox", value }), " ", label(value)))),
    h("fieldset", {}, h("legend", {}, t("file.source_consent")),
      field(t("file.source"), select("source_kind", [["", t("filter.any")], ...sources.map((s) => [s, label(s)])])),
      field(t("file.source_description"), input("source_description")),
      field(t("file.consent"), select("consent_basis", [["", t("filter.any")], ...consents.map((s) => [s, label(s)])])),
      field(t("file.consent_note"), input("consent_note"))),
    h("fieldset", {}, h("legend", {}, t("case.persons")),
      fileBox, personsBox,
      h("div", { class: "actions", id: "person-buttons" },
        h("button", { type: "button", id: "add-person", onclick: () => {
          addPerson(personsBox, state);
          save(form, state);
        } }, t("file.add_person")))),
    feedback,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "send-request" }, t("file.send")),
      h("button", { type: "button", onclick: () => {
        sessionStorage.removeItem(draftKey);
        location.reload();
      } }, t("file.discard"))));
  fill(main, h("h1", {}, t("file.title")), h("p", { class: "lead" }, t("file.lead")), form);
  renderFileBox(fileBox, personsBox, form, state);
  restore(form, personsBox, state);
  if (state.persons === 0) addPerson(personsBox, state);
  form.addEventListener("input", () => save(form, state));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(feedback);
    const request = build(form, state);
    const lines = [t("confirm.to", { to: nodeName("ncct") }), `${label(request.kind)} · ${label(request.urgency)}`,
      t("confirm.persons", { count: request.persons.length }),
      request.location.province ? `${t("case.province")}: ${request.location.province}` : null].filter(Boolean);
    if (!(await confirmSend(t("file.confirm"), lines))) return;
    try {
      const receipt = await call("Submit", request);
      sessionStorage.removeItem(draftKey);
      announce(t("file.sent"));
      location.hash = `#/case/${encodeURIComponent(receipt.caseId)}`;
    } catch (error) {
      fill(feedback, errorBox(error));
      feedback.scrollIntoView({ block: "center" });
    }
  });
}

function renderFileBox(fileBox, personsBox, form, state) {
  const chooser = h("input", { type: "file", accept: ".csv,text/csv", id: "persons-csv" });
  const problems = h("div", { id: "csv-problems" });
  chooser.addEventListener("change", async () => {
    const file = chooser.files[0];
    if (!file) return;
    fill(problems, h("p", {}, t("common.loading")));
    try {
      const reading = await call("ReadTable", { kind: "TABLE_KIND_PERSONS", csv: await file.text() });
      if ((reading.problems || []).length) {
        state.fromFile = null;
        fill(problems, problemList(reading.problems));
        return;
      }
      state.fromFile = { name: file.name, persons: reading.persons || [] };
      fill(problems);
      renderFileBox(fileBox, personsBox, form, state);
    } catch (error) {
      fill(problems, errorBox(error));
    }
  });
  const hidden = Boolean(state.fromFile);
  personsBox.hidden = hidden;
  const buttons = document.getElementById("person-buttons");
  if (buttons) buttons.hidden = hidden;
  if (state.fromFile) {
    const read = { count: state.fromFile.persons.length, name: state.fromFile.name };
    const useForm = () => {
      state.fromFile = null;
      renderFileBox(fileBox, personsBox, form, state);
    };
    fill(fileBox, h("p", { class: "ok", id: "csv-read" }, t("file.csv.read", read)),
      h("button", { type: "button", onclick: useForm }, t("file.csv.remove")));
  } else {
    fill(fileBox, field(t("file.csv"), chooser, t("file.csv.hint")), problems, h("p", { class: "or" }, t("file.or")));
  }
}

function addPerson(box, state) {
  const n = state.persons;
  state.persons += 1;
  const p = (name, attributes) => input(`p${n}.${name}`, attributes);
  const remove = h("button", { type: "button", class: "small", onclick: () => {
    fieldset.remove();
  } }, t("file.remove_person"));
  const fieldset = h("fieldset", { class: "person", "data-index": n },
    h("legend", {}, t("file.person", { n: box.children.length + 1 })),
    field(t("person.name"), p("full_name", { required: true, autocomplete: "off" })),
    field(t("person.native_name"), p("native_name")),
    field(t("person.other_names"), p("other_names"), t("file.list.hint")),
    field(t("person.nationality"), p("nationality", { maxlength: 2, size: 3 }), t("file.country.hint")),
    field(t("person.dob"), p("date_of_birth", { placeholder: "YYYY-MM-DD" })),
    field(t("person.sex"), select(`p${n}.sex`,
      [["", t("filter.any")], ...["SEX_FEMALE", "SEX_MALE", "SEX_OTHER"].map((s) => [s, label(s)])])),
    field(t("person.document"), p("document_number")),
    field(t("person.document_country"), p("document_country", { maxlength: 2, size: 3 })),
    h("label", { class: "check" },
      p("document_withheld", { type: "checkbox", value: "yes" }), " ", t("person.withheld")),
    field(t("person.phone"), p("phone", { inputmode: "tel" }), t("file.phone.hint")),
    field(t("person.languages"), p("languages"), t("file.list.hint")),
    h("label", { class: "check" }, p("minor", { type: "checkbox", value: "yes" }), " ", t("person.minor")),
    field(t("person.needs"), p("needs"), t("file.list.hint")),
    field(t("person.description"), h("textarea", { name: `p${n}.description`, rows: 2 })),
    remove);
  box.append(fieldset);
}

const list = (value) => (value || "").split(";").map((s) => s.trim()).filter(Boolean);

function build(form, state) {
  const data = new FormData(form);
  const get = (name) => (data.get(name) || "").toString().trim();
  const request = { kind: get("kind"), urgency: get("urgency"), originReference: get("origin_reference"),
    contact: get("contact"), summary: get("summary"), indicators: data.getAll("indicators"),
    location: { province: get("province"), district: get("district"), siteName: get("site_name"),
      address: get("address"), detail: get("location_detail") } };
  if (get("latitude") || get("longitude")) {
    request.location.coordinates = { latitude: Number(get("latitude")), longitude: Number(get("longitude")) };
  }
  if (get("source_kind")) request.source = { kind: get("source_kind"), description: get("source_description") };
  if (get("consent_basis")) request.consent = { basis: get("consent_basis"), note: get("consent_note") };
  if (state.fromFile) {
    request.persons = state.fromFile.persons;
    return request;
  }
  request.persons = [...form.querySelectorAll("fieldset.person")].map((fieldset, i) => {
    const n = fieldset.dataset.index;
    const v = (name) => get(`p${n}.${name}`);
    const person = { personRef: `P${i + 1}`, fullName: v("full_name"), nativeName: v("native_name"),
      otherNames: list(v("other_names")), nationality: v("nationality").toUpperCase(), dateOfBirth: v("date_of_birth"),
      phone: v("phone"), languages: list(v("languages")), minor: v("minor") === "yes", needs: list(v("needs")),
      description: v("description") };
    if (v("sex")) person.sex = v("sex");
    if (v("document_number")) {
      person.travelDocument = { number: v("document_number"), issuingCountry: v("document_country").toUpperCase(),
        withheld: v("document_withheld") === "yes" };
    }
    return person;
  });
  return request;
}

function save(form, state) {
  const entries = [...new FormData(form)].filter(([, value]) => typeof value === "string");
  const indexes = [...form.querySelectorAll("fieldset.person")].map((f) => Number(f.dataset.index));
  sessionStorage.setItem(draftKey, JSON.stringify({ entries, indexes }));
  const status = document.getElementById("draft-status");
  if (status) status.textContent = t("file.draft_saved");
}

function restore(form, box, state) {
  let draft;
  try {
    draft = JSON.parse(sessionStorage.getItem(draftKey) || "null");
  } catch {
    draft = null;
  }
  if (!draft) return;
  for (const index of draft.indexes || []) {
    state.persons = index;
    addPerson(box, state);
  }
  for (const [name, value] of draft.entries || []) {
    for (const element of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
      if (element.type === "checkbox") element.checked = element.checked || element.value === value;
      else element.value = value;
    }
  }
  const restored = t("file.draft_restored", { count: number((draft.indexes || []).length) });
  form.prepend(h("p", { class: "notice", id: "draft-status" }, restored));
}
