// The registrar's page: count people per category and hand in the hall's questions, on a phone,
// through network cuts. Every change goes through the durable outbox (sent once, by op_id); counts
// shown include what is still waiting to be sent, folded the same way the hub folds them.

import { $, el } from "./dom.js";
import { startPage } from "./hub.js";
import { fmtNumber, fmtPercent, fmtTime, langSwitch, register, t, translate } from "./i18n.js";
import { strings } from "./registrar-strings.js";

register(strings);

const DELTAS = [-1, 1, 10];
const conn = await startPage();
// What the page needs to draw itself before the hub answers (after a reload with the network down).
const cacheKey = `diemcau.registrar.${conn.token.split(".")[0]}`;
let meta = readCache();

function readCache() {
  try {
    return JSON.parse(localStorage.getItem(cacheKey) || "null");
  } catch {
    return null;
  }
}

function remember() {
  const state = conn.state;
  const site = conn.identity?.site ?? meta?.site;
  if (!state || !site || !state.sites.get(site)) return;
  meta = { site, siteView: state.sites.get(site), config: state.config, timezone: state.event.timezone,
    phase: state.event.phase };
  localStorage.setItem(cacheKey, JSON.stringify(meta));
}

/** The meeting is over: the hub takes no more questions from this hall (known offline from the last snapshot). */
function closed() {
  return (conn.state?.event.phase ?? meta?.phase) === "closed";
}

/** This site's counts as the hub will have them once the outbox is sent (the hub's fold, replayed). */
function counts() {
  const counted = { ...(conn.state?.sites.get(meta.site)?.attendance ?? meta.siteView.attendance) };
  for (const entry of conn.outbox()) {
    const f = entry.fields;
    if (f.site !== meta.site) continue;
    if (entry.type === "attendance.set") counted[f.category] = f.count;
    if (entry.type === "attendance.add") counted[f.category] = Math.max(0, (counted[f.category] ?? 0) + f.delta);
  }
  return counted;
}

function drawCategories() {
  const box = $("categories");
  box.replaceChildren(...meta.config.categories.map((c) => {
    const buttons = DELTAS.map((d) => el("button", {
      type: "button", textContent: d > 0 ? `+${d}` : `−${-d}`, onclick: () => add(c.id, d),
    }, null));
    buttons.forEach((b, i) => Object.assign(b.dataset, { category: c.id, delta: DELTAS[i] }));
    const input = el("input", { type: "number", min: 0, max: 1000000, inputMode: "numeric", name: `recount-${c.id}` });
    input.setAttribute("aria-label", t("att.recount.label", { name: c.name }));
    input.placeholder = t("att.recount.placeholder");
    const recount = el("form", { className: "recount", onsubmit: (e) => {
      e.preventDefault();
      if (input.value === "" || Number(input.value) < 0) return;
      conn.submit("attendance.set", { site: meta.site, category: c.id, count: Math.floor(Number(input.value)) });
      input.value = "";
      render();
    } }, input, el("button", { type: "submit", textContent: t("att.recount") }));
    const row = el("div", { className: "category" }, el("span", { className: "name", textContent: c.name }),
      el("output", { className: "count" }), el("div", { className: "buttons" }, ...buttons), recount);
    row.dataset.category = c.id;
    return row;
  }));
}

function add(category, delta) {
  conn.submit("attendance.add", { site: meta.site, category, delta });
  render();
}

function renderAttendance() {
  const counted = counts();
  let present = 0;
  for (const row of document.querySelectorAll(".category")) {
    const n = counted[row.dataset.category] ?? 0;
    present += n;
    row.querySelector(".count").textContent = fmtNumber(n);
  }
  const site = conn.state?.sites.get(meta.site) ?? meta.siteView;
  $("present").textContent = fmtNumber(present);
  $("expected").textContent = fmtNumber(site.expected);
  $("percent").textContent = `(${fmtPercent(present, site.expected)})`;
  const over = site.capacity != null && present > site.capacity;
  $("capacity").hidden = !over;
  if (over) $("capacity").textContent = t("att.capacity", { present: fmtNumber(present), capacity: fmtNumber(site.capacity) });
}

/** The agencies, short name first (what a phone's narrow select still shows), and "not decided". */
function drawAgencies() {
  const select = $("question-form").agency;
  const chosen = select.value;
  const options = meta.config.agencies.map((x) => el("option", {
    value: x.id, textContent: x.short ? `${x.short} — ${x.name}` : x.name,
  }));
  select.replaceChildren(el("option", { value: "", textContent: t("ask.agency.none") }), ...options);
  if (chosen) select.value = chosen;
}

/** The topics as choices that wrap: a select cuts long topic names off on a phone. */
function drawTopics() {
  const chosen = document.querySelector("#topics input:checked")?.value;
  $("topics").replaceChildren(...meta.config.topics.map((topic) => el("label", { className: "choice" },
    el("input", { type: "radio", name: "topic", value: topic.id, required: true, checked: topic.id === chosen }),
    el("span", { textContent: topic.name }))));
}

function questionItem(q, pending) {
  const topic = meta.config.topics.find((x) => x.id === q.topic)?.name ?? q.topic;
  const status = el("span", { className: "q-status", textContent: pending ? t("mine.pending") : t(`q.${q.status}`) });
  status.dataset.status = pending ? "pending" : q.status;
  const head = el("div", { className: "head" }, status,
    el("strong", { textContent: q.delegate.name }), q.delegate.unit ? el("span", { textContent: q.delegate.unit }) : null,
    el("span", { className: "muted", textContent: topic }),
    q.wants_to_speak ? el("span", { className: "muted", textContent: t("mine.speak") }) : null,
    q.submitted ? el("span", { className: "muted", textContent: fmtTime(q.submitted, meta.timezone) }) : null,
    q.due && q.status === "deferred" ? el("span", { className: "muted", textContent: t("mine.due", { date: q.due }) }) : null);
  const item = el("li", {}, head, el("p", { className: "text", textContent: q.text }));
  item.dataset.status = status.dataset.status;
  if (q.id) item.dataset.question = q.id;
  return item;
}

function renderQuestions() {
  const pending = conn.outbox().filter((e) => e.type === "question.submit" && e.fields.site === meta.site);
  const mine = [...(conn.state?.questions.values() ?? [])].filter((q) => q.site === meta.site).reverse();
  $("questions").replaceChildren(...pending.reverse().map((e) => questionItem(e.fields, true)),
    ...mine.map((q) => questionItem(q, false)));
  $("no-questions").hidden = pending.length + mine.length > 0;
}

function renderOutbox() {
  const n = conn.outbox().length;
  $("outbox").hidden = n === 0;
  $("outbox").textContent = t("outbox.n", { n: fmtNumber(n) });
  $("send-now-bar").hidden = n === 0 || conn.status === "online" || conn.status === "denied";
}

function renderClosed() {
  const shut = closed();
  $("closed").hidden = !shut;
  for (const control of $("question-form").elements) control.disabled = shut;
}

let drawnFor = null;
function render() {
  if (!meta) return;
  if (drawnFor !== meta.config) {
    drawnFor = meta.config;
    $("site-name").textContent = meta.siteView.name;
    drawCategories();
    drawTopics();
    drawAgencies();
  }
  renderAttendance();
  renderQuestions();
  renderOutbox();
  renderClosed();
}

let trouble = null; // the problem bar's string key and values, so the language switch redraws it

function problem(key, vars = {}) {
  trouble = { key, vars };
  showProblem();
}

function showProblem() {
  $("problem").hidden = !trouble;
  $("problem").textContent = trouble ? t(trouble.key, trouble.vars) : "";
}

$("question-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.target;
  const name = form.delegate.value.trim();
  const topic = form.querySelector("input[name=topic]:checked");
  const fields = {
    site: meta.site, topic: topic.value, text: form.text.value.trim(),
    delegate: { name, unit: form.unit.value.trim() }, wants_to_speak: form.speak.checked,
  };
  if (!name || !fields.text) return;
  if (form.agency.value) fields.agency = form.agency.value;
  conn.submit("question.submit", fields);
  form.reset();
  topic.checked = true;
  $("counter").textContent = `0 / ${fmtNumber(2000)}`;
  $("form-status").textContent = t(conn.status === "online" ? "ask.saved" : "ask.saved.offline", { name });
  render();
});

$("question-form").text.addEventListener("input", (e) => {
  $("counter").textContent = `${fmtNumber(e.target.value.length)} / ${fmtNumber(2000)}`;
});

/** An answer arrived for an outbox entry: show its effect now, before the next pushed frame. */
conn.addEventListener("sent", ({ detail }) => {
  const { entry, result, error } = detail;
  const question = entry.type === "question.submit";
  if (error) {
    const refused = question && error.code === "conflict" && closed();
    if (refused) problem("ask.refused.closed", { name: entry.fields.delegate.name });
    else problem("failed", { message: error.message });
    if (question) $("form-status").textContent = "";
  } else if (entry.type.startsWith("attendance.") && conn.state) {
    const site = conn.state.sites.get(result.site);
    site.attendance = { ...site.attendance, [result.category]: result.count };
  } else if (question) {
    $("form-status").textContent = t("ask.sent", { name: entry.fields.delegate.name });
    if (conn.state && !conn.state.questions.has(result.question)) {
      conn.state.questions.set(result.question, { id: result.question, status: "submitted", ...entry.fields });
    }
  }
  render();
});

conn.addEventListener("auth", ({ detail }) => {
  if (!detail.site) problem("nosite");
});
conn.addEventListener("state", () => {
  remember();
  render();
});
conn.addEventListener("outbox", render);
conn.addEventListener("status", renderOutbox);
$("send-now").addEventListener("click", () => conn.reconnectNow());
window.addEventListener("langchange", () => {
  drawnFor = null;
  $("form-status").textContent = "";
  showProblem();
  render();
});

langSwitch($("lang"));
translate();
render();
