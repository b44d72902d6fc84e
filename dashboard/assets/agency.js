// The agency liaison's page: the questions assigned to this agency (the hub sends no others), grouped by
// topic and status, a draft answer before the day, the written answer (text, document number, date) for
// deferred questions after it, and the agency's progress against the plan's deadlines.

import { strings } from "./agency-strings.js";
import { $, el } from "./dom.js";
import { startPage } from "./hub.js";
import { fmtDate, fmtNumber, fmtTime, langSwitch, register, t, translate } from "./i18n.js";

register(strings);

const OPEN = new Set(["submitted", "queued", "on_air"]);
const RANK = { deferred: 0, on_air: 1, queued: 2, submitted: 3, answered_written: 4, answered: 5, rejected: 6, merged: 7 };
const FILTERS = {
  all: () => true,
  draft: (q) => OPEN.has(q.status) && !q.draft,
  deferred: (q) => q.status === "deferred",
  done: (q) => q.status === "answered" || q.status === "answered_written",
};
const conn = await startPage();
let deadlineTimer = null;

/** Today in the event's time zone, by the hub's clock, as YYYY-MM-DD. */
function hubToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: conn.state.event.timezone }).format(new Date(conn.serverNow()));
}

function siteName(id) {
  return conn.state.sites.get(id)?.name ?? id;
}

// -- deadlines --------------------------------------------------------------------------------

async function loadDeadlines() {
  const response = await conn.fetch("/api/deadlines");
  if (response.ok) renderDeadlines(await response.json());
}

function refreshDeadlinesSoon() {
  clearTimeout(deadlineTimer);
  deadlineTimer = setTimeout(loadDeadlines, 500);
}

function renderDeadlines(report) {
  const row = report.agencies[0];
  if (!row) return;
  const item = (label, value) => el("div", {}, el("dt", { textContent: t(label) }), el("dd", { textContent: value }));
  $("progress").replaceChildren(
    item("p.assigned", fmtNumber(row.assigned)), item("p.drafts", `${fmtNumber(row.drafted)} / ${fmtNumber(row.to_draft)}`),
    item("p.deferred", fmtNumber(row.deferred)), item("p.written", fmtNumber(row.written)),
    item("p.outstanding", fmtNumber(row.outstanding)), item("p.due", fmtDate(row.due)));
  $("dates").replaceChildren(...report.deadlines.filter((d) => d.date).map((d) => el("li", {
    className: d.passed ? "passed" : "", textContent: `${t(`d.${d.id}`)}: ${fmtDate(d.date)}${d.passed ? ` (${t("d.passed")})` : ""}`,
  })));
  const draftDate = report.deadlines.find((d) => d.id === "draft_answers")?.date;
  const late = row.late.map((reason) => t(`late.${reason}`, {
    date: fmtDate(draftDate), n: fmtNumber(reason === "draft_answers" ? row.to_draft - row.drafted : row.overdue),
  }));
  $("late").hidden = !late.length;
  $("late").textContent = late.join(" ");
  $("progress").dataset.assigned = row.assigned;
}

// -- questions --------------------------------------------------------------------------------

function answerBlock(label, record, text) {
  return el("div", { className: "answer" }, el("strong", { textContent: label }), el("div", { textContent: text ?? record.text }));
}

function field(label, input) {
  return el("label", {}, el("span", { textContent: t(label) }), input);
}

function draftForm(q) {
  const text = el("textarea", { name: "text", rows: 4, maxLength: 20000, required: true, defaultValue: q.draft?.text ?? "" });
  return answerForm(q, "draft", [field("draft.label", text)], "draft.save");
}

function writtenForm(q) {
  const text = el("textarea", { name: "text", rows: 5, maxLength: 20000, required: true });
  const reference = el("input", { name: "reference", maxLength: 100, required: true, placeholder: t("placeholder.reference") });
  const date = el("input", { name: "date", type: "date", required: true, defaultValue: hubToday() });
  const row = el("div", { className: "row" }, field("written.reference", reference), field("written.date", date));
  return answerForm(q, "written", [field("written.text", text), row], "written.send");
}

function answerForm(q, kind, fields, buttonKey) {
  const status = el("span", { className: "muted", role: "status" });
  const button = el("button", { type: "submit", className: "primary", textContent: t(buttonKey) });
  const form = el("form", { className: `answer-form ${kind}` }, ...fields, el("div", { className: "actions" }, button, status));
  form.dataset.kind = kind;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const fields = { question: q.id, kind, text: data.text.trim() };
    if (kind === "written") Object.assign(fields, { reference: data.reference.trim(), date: data.date });
    button.disabled = true;
    status.textContent = t("sending");
    try {
      await conn.send("question.answer", fields);
      status.textContent = t("saved");
    } catch (error) {
      status.textContent = t("failed", { message: error.message });
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function card(q) {
  const tz = conn.state.event.timezone;
  const delegate = [q.delegate.name, q.delegate.unit].filter(Boolean).join(" — ");
  const meta = el("div", { className: "meta" },
    el("span", { className: `badge ${q.status}`, textContent: t(`q.${q.status}`) }),
    el("span", { textContent: siteName(q.site) }), el("span", { textContent: delegate }),
    el("span", { textContent: t(`origin.${q.origin}`) }), q.due ? el("span", { textContent: t("due", { date: fmtDate(q.due) }) }) : null);
  const parts = [meta, el("p", { className: "text", textContent: q.text })];
  if (q.draft) parts.push(answerBlock(t("draft.saved", { at: fmtTime(q.draft.at, tz, { date: true }) }), q.draft));
  if (q.written) {
    parts.push(answerBlock(t("written.shown", { reference: q.written.reference ?? "–", date: fmtDate(q.written.date) }), q.written));
  }
  if (OPEN.has(q.status) && conn.state.event.phase !== "closed") parts.push(draftForm(q));
  if (q.status === "deferred") parts.push(writtenForm(q));
  const node = el("li", { className: "card" }, ...parts);
  node.dataset.question = q.id;
  node.dataset.status = q.status;
  return node;
}

/** Keep what the liaison is typing when the card is redrawn under them. */
function carryOver(from, to) {
  for (const input of from.querySelectorAll("form [name]")) {
    const twin = to.querySelector(`form.${input.form.dataset.kind} [name="${input.name}"]`);
    if (twin && input.value !== input.defaultValue) twin.value = input.value;
  }
}

function render() {
  const state = conn.state;
  const keep = new Map([...document.querySelectorAll(".card")].map((c) => [c.dataset.question, c]));
  const show = FILTERS[$("filter").value] ?? FILTERS.all;
  const questions = [...state.questions.values()].filter(show);
  const sections = state.config.topics.map((topic) => {
    const items = questions.filter((q) => q.topic === topic.id)
      .sort((a, b) => RANK[a.status] - RANK[b.status] || a.position - b.position);
    if (!items.length) return null;
    const cards = items.map((q) => {
      const node = card(q);
      if (keep.has(q.id)) carryOver(keep.get(q.id), node);
      return node;
    });
    const section = el("section", { className: "topic" },
      el("h3", { textContent: `${topic.name} (${fmtNumber(items.length)})` }), el("ol", { className: "cards" }, ...cards));
    section.dataset.topic = topic.id;
    return section;
  }).filter(Boolean);
  $("topics").replaceChildren(...sections);
  $("none").hidden = state.questions.size > 0;
}

function showAgency() {
  const agency = conn.state?.config.agencies.find((a) => a.id === conn.identity?.agency);
  $("agency-name").textContent = agency ? agency.name : "…";
}

langSwitch($("lang"));
translate();
conn.addEventListener("auth", (e) => {
  const notAgency = e.detail.role !== "agency";
  $("problem").hidden = !notAgency;
  if (notAgency) $("problem").textContent = t("notagency");
  else loadDeadlines();
});
conn.addEventListener("state", (e) => {
  showAgency();
  if (e.detail.full || e.detail.questions.length) {
    render();
    refreshDeadlinesSoon();
  }
});
$("filter").addEventListener("change", render);
window.addEventListener("langchange", () => {
  if (conn.state) render();
  loadDeadlines();
});
