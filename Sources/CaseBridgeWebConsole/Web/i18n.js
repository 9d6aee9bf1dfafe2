// The message catalog: every string a person reads comes from messages-<language>.json. A catalog
// names its language and its direction ("rtl" for Arabic script), which the page then takes.

let messages = {};
let language = "en";

/** Loads the catalog for the browser's first language that has one (English otherwise). */
export async function loadCatalog(available = ["en"]) {
  const wanted = (navigator.languages || [navigator.language || "en"]).map((l) => l.split("-")[0]);
  language = wanted.find((l) => available.includes(l)) || "en";
  const response = await fetch(`/messages-${language}.json`, { credentials: "same-origin" });
  const catalog = await response.json();
  messages = catalog.messages;
  document.documentElement.lang = catalog.language;
  document.documentElement.dir = catalog.direction || "ltr";
  for (const element of document.querySelectorAll("[data-t]")) element.textContent = t(element.dataset.t);
}

/** t("cases.range", {from: 1, to: 25, total: 60}) → the catalog's text with {count} filled in. Plural forms are
 *  keys ending in ".one", ".other" (Intl.PluralRules names), chosen by `count`. */
export function t(key, values = {}) {
  let text = messages[key];
  if (text === undefined && values.count !== undefined) {
    const form = new Intl.PluralRules(language).select(Number(values.count));
    text = messages[`${key}.${form}`] ?? messages[`${key}.other`];
  }
  if (text === undefined) {
    console.warn("missing message", key);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (values[name] === undefined ? `{${name}}` : format(values[name])));
}

function format(value) {
  return typeof value === "number" ? new Intl.NumberFormat(language).format(value) : String(value);
}

/** The name of a contract enum value ("CASE_STATUS_RECEIVED" → "Received"). */
export function label(value) {
  if (value === undefined || value === null || value === "") return "";
  return messages[`enum.${value}`] ?? String(value).toLowerCase().replaceAll("_", " ");
}

/** A moment, in the reader's language and time zone. */
export function when(ms) {
  const n = Number(ms || 0);
  if (!n) return "";
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" }).format(new Date(n));
}

/** "3 hours ago", for lists. */
export function ago(ms) {
  const n = Number(ms || 0);
  if (!n) return "";
  const seconds = Math.round((n - Date.now()) / 1000);
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  const format = new Intl.RelativeTimeFormat(language, { numeric: "auto" });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(0, "minute");
}

export function number(n) {
  return new Intl.NumberFormat(language).format(Number(n || 0));
}
