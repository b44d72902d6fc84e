// The moderator's console: the live question queue by topic, its actions, the floor, agencies, phase and import.

import { strings as chairStrings } from "./chair-strings.js";
import { watchDeadlines } from "./deadlines-panel.js";
import { $, el, frameLoop, put, toast } from "./dom.js";
import { wireDownloads, wireReportLinks } from "./download.js";
import { startPage } from "./hub.js";
import { fmtDuration, fmtNumber, fmtTime, fold, langSwitch, register, t, translate } from "./i18n.js";
import { strings } from "./moderator-strings.js";
import { incidentText, OPEN, secondsSince } from "./view.js";

register(chairStrings);
register(strings);

// What the hub allows (hub/state.py TRANSITIONS); the hub stays the judge, this only hides useless buttons.
const MOVES = {
  submitted: ["queued", "on_air", "answered", "deferred", "rejected"],
  queued: ["submitted", "on_air", "answered", "deferred", "rejected"],
  on_air: ["queued", "answered", "deferred"],
  answered: ["queued", "deferred"],
  deferred: ["queued", "on_air", "answered"],
  rejected: ["submitted", "queued"],
  answered_written: [],
  merged: [],
};
const MERGEABLE = new Set([...OPEN, "deferred"]);
const FILTERS = {
  open: OPEN,
  deferred: new Set(["deferred"]),
  done: new Set(["answered", "answered_written", "rejected", "merged"]),
  all: null,
};
const RANK = { on_air: 0, queued: 1, submitted: 2, deferred: 3, answered: 4, answered_written: 5, rejected: 6, merged: 7 };

let conn;
const cards = new Map(); // question id -> article
const topics = new Map(); // topic id -> {el, list, counts}
const dirty = { questions: new Set(), sites: false, full: true };
let incidentsKey = "";

/** Send a command; failures are shown, never thrown at the user. */
async function act(type, fields) {
  try {
    return await conn.send(type, fields);
  } catch (error) {
    toast(t("mod.failed", { message: error.code === "offline" ? t("conn.offline") : error.message }));
    return null;
  }
}

const siteName = (id) => conn.state.sites.get(id)?.name ?? id;
const agencyName = (id) => conn.state.config.agencies.find((a) => a.id === id)?.short
  || conn.state.config.agencies.find((a) => a.id === id)?.name || id;

// -- question cards ---------------------------------------------------------------------------

function topicGroup(id) {
  let group = topics.get(id);
  if (group) return group;
  const topic = conn.state.config.topics.find((x) => x.id === id) ?? { id, name: id };
  const counts = el("span", { className: "count" });
  const list = el("div", { className: "cards" });
  const section = el("section", { className: "topic" }, el("h3", {}, el("span", { textContent: topic.name }), counts), list);
  section.dataset.topic = id;
  $("topics").append(section);
  group = { el: section, list, counts };
  topics.set(id, group);
  return group;
}

function buildTopics() {
  $("topics").replaceChildren();
  topics.clear();
  cards.clear();
  for (const topic of conn.state.config.topics) topicGroup(topic.id);
}

function agencySelect(q) {
  const select = el("select", { className: "agency" });
  select.setAttribute("aria-label", t("mod.agency"));
  select.append(new Option(t("mod.no_agency"), ""));
  for (const a of conn.state.config.agencies) select.append(new Option(a.short || a.name, a.id));
  select.value = q.agency ?? "";
  return select;
}

function renderCard(q) {
  let card = cards.get(q.id);
  if (!card) {
    card = el("article", { className: "q" });
    card.dataset.question = q.id;
    card.tabIndex = -1;
    cards.set(q.id, card);
  }
  card.dataset.status = q.status;
  card.dataset.topic = q.topic;
  card.dataset.search = fold([q.id, q.text, q.delegate?.name, q.delegate?.unit, siteName(q.site), q.answer_note].join(" "));
  if (card.dataset.seq === String(q.seq) && !card.relabel) return card;
  card.dataset.seq = String(q.seq);
  card.relabel = false;
  const head = el("header", {}, el("span", { className: "qid", textContent: q.id }),
    el("span", { className: `badge st-${q.status}`, textContent: t(`q.${q.status}`) }),
    el("span", { className: "site", textContent: siteName(q.site) }),
    el("span", { className: "who", textContent: [q.delegate?.name, q.delegate?.unit].filter(Boolean).join(", ") }));
  if (q.wants_to_speak) head.append(el("span", { className: "flag", textContent: t("mod.wants_to_speak") }));
  if (q.origin === "pre") head.append(el("span", { className: "flag pre", textContent: t("mod.pre") }));
  const spoken = el("span", { className: "spoken" });
  spoken.dataset.onAir = q.status === "on_air" ? q.on_air_at ?? "" : "";
  spoken.dataset.base = String(q.spoken_seconds || 0);
  head.append(spoken);
  const body = [head, el("p", { className: "text", textContent: q.text })];
  const notes = [];
  if (q.co_askers?.length) notes.push(t("mod.co_askers", { list: q.co_askers.map((a) => `${a.name} (${siteName(a.site)})`).join("; ") }));
  if (q.merged_into) notes.push(t("mod.merged_into", { id: q.merged_into }));
  if (q.reason) notes.push(t("mod.reason", { reason: q.reason }));
  if (q.due) notes.push(t("mod.due", { agency: agencyName(q.agency), due: q.due }));
  if (q.answer_note) notes.push(t("mod.answer_note", { note: q.answer_note }));
  if (notes.length) body.push(el("p", { className: "notes", textContent: notes.join(" · ") }));
  body.push(controls(q), el("div", { className: "subform" }));
  card.replaceChildren(...body);
  tickSpoken(spoken, conn.serverNow());
  return card;
}

function controls(q) {
  const bar = el("div", { className: "controls" });
  if (q.status !== "merged" && q.status !== "answered_written") bar.append(agencySelect(q));
  if (q.status === "queued" || q.status === "submitted") {
    for (const [dir, label] of [["up", "↑"], ["down", "↓"]]) {
      const b = el("button", { type: "button", className: "move", textContent: label });
      b.dataset.move = dir;
      b.setAttribute("aria-label", t(`act.${dir}`));
      bar.append(b);
    }
  }
  for (const status of MOVES[q.status] ?? []) {
    const label = t(q.status === "submitted" && status === "queued" ? "act.approve" : `act.${status}`);
    const b = el("button", { type: "button", className: status === "on_air" ? "primary" : "", textContent: label });
    b.dataset.act = status;
    bar.append(b);
  }
  if (MERGEABLE.has(q.status)) {
    const b = el("button", { type: "button", textContent: t("act.merge") });
    b.dataset.act = "merge";
    bar.append(b);
  }
  return bar;
}

function tickSpoken(span, now) {
  const base = Number(span.dataset.base || 0);
  const live = span.dataset.onAir ? secondsSince(span.dataset.onAir, now) : 0;
  const total = base + Math.max(0, live ?? 0);
  put(span, total > 0 ? t("mod.spoken", { d: fmtDuration(total) }) : "");
}

/** Cards in each topic: on air, queued, new, then the rest; the queue by position. */
function sortTopics() {
  const byTopic = new Map();
  for (const q of conn.state.questions.values()) {
    if (!byTopic.has(q.topic)) byTopic.set(q.topic, []);
    byTopic.get(q.topic).push(q);
  }
  for (const [id, list] of byTopic) {
    list.sort((a, b) => RANK[a.status] - RANK[b.status] || a.position - b.position || a.seq - b.seq);
    const group = topicGroup(id);
    const wanted = list.map((q) => cards.get(q.id));
    const current = [...group.list.children];
    if (wanted.length !== current.length || wanted.some((c, i) => c !== current[i])) group.list.append(...wanted);
    const waiting = list.filter((q) => q.status === "queued" || q.status === "submitted").length;
    put(group.counts, t("mod.topic_counts", { waiting: fmtNumber(waiting), all: fmtNumber(list.length) }));
  }
}

function applyFilter() {
  const query = fold($("search").value.trim());
  const allowed = FILTERS[$("filter").value];
  let shown = 0;
  for (const card of cards.values()) {
    const visible = (!allowed || allowed.has(card.dataset.status)) && (!query || card.dataset.search.includes(query));
    card.hidden = !visible;
    shown += visible;
  }
  for (const group of topics.values()) group.el.hidden = ![...group.list.children].some((c) => !c.hidden);
  put($("q-shown"), t("chair.shown", { n: fmtNumber(shown), all: fmtNumber(cards.size) }));
}

// -- actions on a card ------------------------------------------------------------------------

/** The new position that moves `q` one place up or down among the open questions of its topic. */
function movedPosition(q, dir) {
  const list = [...conn.state.questions.values()]
    .filter((x) => x.topic === q.topic && (x.status === "queued" || x.status === "submitted") && x.status === q.status)
    .sort((a, b) => a.position - b.position || a.seq - b.seq);
  const i = list.findIndex((x) => x.id === q.id);
  const j = dir === "up" ? i - 1 : i + 1;
  if (j < 0 || j >= list.length) return null;
  const beyond = list[dir === "up" ? j - 1 : j + 1];
  return beyond ? (list[j].position + beyond.position) / 2 : list[j].position + (dir === "up" ? -1 : 1);
}

async function onCardClick(e) {
  const button = e.target.closest("button");
  const card = e.target.closest("article.q");
  if (!button || !card) return;
  const q = conn.state.questions.get(card.dataset.question);
  const sub = card.querySelector(".subform");
  if (button.dataset.move) {
    const position = movedPosition(q, button.dataset.move);
    if (position != null) await act("question.update", { question: q.id, position });
  } else if (button.dataset.act === "deferred" && !q.agency) {
    toast(t("mod.need_agency"));
    card.querySelector("select.agency")?.focus();
  } else if (button.dataset.act === "rejected") {
    rejectForm(sub, q);
  } else if (button.dataset.act === "merge") {
    await mergeForm(sub, q);
  } else if (button.dataset.confirm === "reject") {
    const reason = sub.querySelector("input").value.trim();
    if (!reason) return toast(t("mod.need_reason"));
    await act("question.update", { question: q.id, status: "rejected", reason });
  } else if (button.dataset.confirm === "merge") {
    await act("question.update", { question: q.id, merged_into: sub.querySelector("select").value });
  } else if (button.dataset.confirm === "cancel") {
    sub.replaceChildren();
  } else if (button.dataset.act) {
    await act("question.update", { question: q.id, status: button.dataset.act });
  }
}

function confirmButtons(kind) {
  const ok = el("button", { type: "button", className: "primary", textContent: t(`act.confirm_${kind}`) });
  ok.dataset.confirm = kind;
  const cancel = el("button", { type: "button", textContent: t("act.cancel") });
  cancel.dataset.confirm = "cancel";
  return [ok, cancel];
}

function rejectForm(sub, q) {
  const input = el("input", { maxLength: 1000, placeholder: t("mod.reason_placeholder") });
  input.setAttribute("aria-label", t("mod.reason_placeholder"));
  sub.replaceChildren(input, ...confirmButtons("reject"));
  input.focus();
}

/** Offer the likely duplicates first (the hub's similarity), then every other open question of the topic. */
async function mergeForm(sub, q) {
  let similar = [];
  try {
    const response = await conn.fetch(`/api/questions/${encodeURIComponent(q.id)}/similar`);
    if (response.ok) similar = (await response.json()).similar.filter((x) => x.status !== "merged");
  } catch {
    similar = [];
  }
  const select = el("select");
  select.setAttribute("aria-label", t("mod.merge_into"));
  const seen = new Set([q.id]);
  const label = (x) => `${x.id} · ${siteName(x.site)} · ${x.text.slice(0, 80)}`;
  for (const x of similar) {
    seen.add(x.id);
    select.append(new Option(`${t("mod.similar")} ${Math.round(x.score * 100)}% — ${label(x)}`, x.id));
  }
  for (const x of conn.state.questions.values()) {
    if (!seen.has(x.id) && x.topic === q.topic && MERGEABLE.has(x.status)) select.append(new Option(label(x), x.id));
  }
  if (!select.options.length) return toast(t("mod.nothing_to_merge"));
  sub.replaceChildren(el("span", { textContent: t("mod.merge_into") }), select, ...confirmButtons("merge"));
  select.focus();
}

async function onCardChange(e) {
  if (!e.target.matches("select.agency")) return;
  const card = e.target.closest("article.q");
  if (e.target.value) await act("question.update", { question: card.dataset.question, agency: e.target.value });
}

// -- floor, agenda, phase ---------------------------------------------------------------------

function renderFloor(state, now) {
  const floor = state.floor || {};
  const q = floor.question ? state.questions.get(floor.question) : null;
  put($("on-air"), floor.site ? `${siteName(floor.site)}${q ? ` — ${q.delegate?.name ?? ""}: ${q.text}` : ""}` : t("now.nobody"));
  $("on-air").classList.toggle("empty", !floor.site);
  put($("on-air-time"), floor.since ? fmtDuration(secondsSince(floor.since, now)) : "");
  $("on-air-actions").hidden = !(q && q.status === "on_air");
  $("on-air-actions").dataset.question = q?.id ?? "";
  const next = floor.next ? state.questions.get(floor.next) : null;
  put($("next"), next ? `${siteName(next.site)} — ${next.delegate?.name ?? ""}: ${next.text}` : t("now.no_next"));
  $("next").classList.toggle("empty", !next);
  $("take-next").disabled = !next;
  $("take-next").dataset.question = next?.id ?? "";
}

/**
 * Every open incident at any site, oldest first: what is broken where, before a site is called to the floor.
 * Rebuilt only when the incidents (or the language) change, not at every heartbeat a frame carries.
 */
function renderIncidents(state) {
  const open = [];
  for (const site of state.sites.values()) for (const incident of site.incidents ?? []) open.push([site, incident]);
  const key = JSON.stringify([document.documentElement.lang, open.map(([site, i]) => [site.id, i.id, i.note])]);
  if (key === incidentsKey) return;
  incidentsKey = key;
  open.sort((a, b) => Date.parse(a[1].opened) - Date.parse(b[1].opened));
  $("incidents").replaceChildren(...open.map(([site, incident]) => {
    const li = el("li", {}, el("strong", { className: "site", textContent: site.name }),
      site.group ? el("span", { className: "group", textContent: site.group }) : null,
      el("span", { className: "what", textContent: incidentText(incident) }),
      el("span", { className: "since", textContent: t("now.since", { at: fmtTime(incident.opened, state.event.timezone) }) }));
    li.dataset.site = site.id;
    return li;
  }));
  $("incidents-row").hidden = !open.length;
}

function renderAgenda(state) {
  const select = $("agenda");
  const items = state.agenda?.items ?? [];
  if (select.options.length !== items.length) {
    select.replaceChildren(...items.map((i) => new Option(`${i.title} (${fmtNumber(i.minutes)}′)`, i.id)));
  }
  $("agenda-go").disabled = !items.length;
  if (document.activeElement !== select && state.agenda?.current) select.value = state.agenda.current.id;
  const phase = $("phase");
  if (document.activeElement !== phase) phase.value = state.event.phase;
}

/** Turns and seconds spoken per site, as the hub counts them (`floor.by_site`), most spoken first. */
function renderSpeaking(state) {
  const spoken = state.floor?.by_site ?? {};
  const rows = [...state.sites.values()].filter((s) => spoken[s.id])
    .sort((a, b) => spoken[b.id].seconds - spoken[a.id].seconds)
    .map((s) => {
      const tr = el("tr", {}, el("td", { textContent: s.name }), el("td", { className: "n", textContent: fmtNumber(spoken[s.id].turns) }),
        el("td", { className: "n", textContent: fmtDuration(spoken[s.id].seconds) }));
      tr.dataset.site = s.id;
      return tr;
    });
  if (!rows.length) rows.push(el("tr", {}, el("td", { className: "muted", colSpan: 3, textContent: t("mod.nobody_spoke") })));
  $("speaking").replaceChildren(...rows);
}

// -- agency attendance ------------------------------------------------------------------------

function buildAgencies(state) {
  const root = $("agencies");
  root.replaceChildren(...state.config.agencies.map((a) => {
    const form = el("form", { className: "agency-row" });
    form.dataset.agency = a.id;
    const status = el("select", { name: "status" });
    status.setAttribute("aria-label", `${a.name}: ${t("mod.agency_status")}`);
    status.append(new Option("—", ""), ...["head", "deputy", "absent"].map((s) => new Option(t(`agency.${s}`), s)));
    const delegate = el("input", { name: "delegate", maxLength: 200, placeholder: t("mod.delegate") });
    delegate.setAttribute("aria-label", `${a.name}: ${t("mod.delegate")}`);
    const report = el("label", { className: "check" }, el("input", { type: "checkbox", name: "written_report" }),
      el("span", { textContent: t("mod.written_report") }));
    const save = el("button", { type: "submit", textContent: t("act.save") });
    form.append(el("strong", { className: "name", textContent: a.short || a.name }), status, delegate, report, save);
    return form;
  }));
}

function renderAgencies(state) {
  for (const form of $("agencies").children) {
    const rec = state.agencies?.[form.dataset.agency];
    form.classList.toggle("recorded", !!rec);
    if (!rec || form.dataset.editing === "1") continue;
    form.status.value = rec.status;
    form.delegate.value = rec.delegate ?? "";
    form.written_report.checked = !!rec.written_report;
  }
}

async function onAgencySubmit(e) {
  e.preventDefault();
  const form = e.target;
  if (!form.status.value) return toast(t("mod.pick_status"));
  const fields = { agency: form.dataset.agency, status: form.status.value, written_report: form.written_report.checked };
  if (form.delegate.value.trim()) fields.delegate = form.delegate.value.trim();
  if (await act("agency.attendance", fields)) {
    form.dataset.editing = "";
    toast(t("mod.saved"));
  }
}

// -- import -----------------------------------------------------------------------------------

async function onImport(e) {
  e.preventDefault();
  const file = $("import-file").files[0];
  const out = $("import-result");
  if (!file) return;
  out.replaceChildren(el("p", { className: "muted", textContent: t("mod.importing") }));
  let answer;
  try {
    const response = await conn.fetch("/api/questions/import", { method: "POST", body: file });
    answer = response.status === 404 ? { ok: false, errors: [{ text: t("mod.no_import") }] } : await response.json();
  } catch {
    answer = { ok: false, errors: [{ text: t("conn.offline") }] };
  }
  const lines = [...(answer.errors ?? []), ...(answer.results ?? []).filter((r) => r.error)].map((x) => el("li", { textContent: x.text }));
  const summary = answer.ok
    ? t("mod.imported", { n: fmtNumber(answer.imported), same: fmtNumber(answer.unchanged) })
    : t("mod.import_failed", { n: fmtNumber(lines.length) });
  out.replaceChildren(el("p", { className: answer.ok ? "ok" : "bad", textContent: summary }), el("ul", { className: "errors" }, ...lines));
}

// -- the frame loop ---------------------------------------------------------------------------

const schedule = frameLoop(flush);

function flush() {
  const state = conn.state;
  if (!state) return;
  if (dirty.full) {
    buildTopics();
    buildAgencies(state);
  }
  const ids = dirty.full ? [...state.questions.keys()] : [...dirty.questions];
  for (const id of ids) {
    const q = state.questions.get(id);
    if (q) renderCard(q);
  }
  if (ids.length || dirty.full) {
    sortTopics();
    applyFilter();
    renderSpeaking(state);
  }
  if (dirty.sites || dirty.full) renderIncidents(state);
  put($("event-title"), `${t("mod.heading")} — ${state.event.title}`);
  renderFloor(state, conn.serverNow());
  renderAgenda(state);
  renderAgencies(state);
  dirty.full = false;
  dirty.sites = false;
  dirty.questions.clear();
  document.body.dataset.seq = String(state.seq);
}

function tick() {
  if (!conn.state) return;
  const now = conn.serverNow();
  renderFloor(conn.state, now);
  for (const span of document.querySelectorAll(".spoken[data-on-air]:not([data-on-air=''])")) tickSpoken(span, now);
}

function relabel() {
  translate();
  if (!conn.state) return;
  for (const card of cards.values()) card.relabel = true;
  dirty.full = true;
  schedule();
}

async function main() {
  langSwitch($("lang"));
  translate();
  conn = await startPage();
  conn.addEventListener("state", (e) => {
    if (e.detail.full) dirty.full = true;
    for (const id of e.detail.questions) dirty.questions.add(id);
    if (e.detail.sites.length) dirty.sites = true;
    schedule();
  });
  watchDeadlines(conn, $("deadlines"), { dates: true });
  window.addEventListener("langchange", relabel);
  const topicsRoot = $("topics");
  topicsRoot.addEventListener("click", onCardClick);
  topicsRoot.addEventListener("change", onCardChange);
  $("search").addEventListener("input", applyFilter);
  $("filter").addEventListener("change", applyFilter);
  $("on-air-actions").addEventListener("click", async (e) => {
    const status = e.target.closest("button")?.dataset.act;
    const q = conn.state.questions.get(e.currentTarget.dataset.question);
    if (!status || !q) return;
    if (status === "deferred" && !q.agency) return toast(t("mod.need_agency"));
    await act("question.update", { question: q.id, status });
  });
  $("take-next").addEventListener("click", async (e) => {
    const q = conn.state.questions.get(e.currentTarget.dataset.question);
    if (q) await act("floor.call", { site: q.site, question: q.id });
  });
  $("agenda-go").addEventListener("click", () => act("agenda.advance", { item: $("agenda").value }));
  $("phase").addEventListener("change", (e) => act("event.phase", { phase: e.target.value }));
  $("agencies").addEventListener("input", (e) => { e.target.form.dataset.editing = "1"; });
  $("agencies").addEventListener("submit", onAgencySubmit);
  $("import-form").addEventListener("submit", onImport);
  const links = document.querySelector(".links");
  wireReportLinks(links, conn);
  wireDownloads(links, conn, (status) => toast(t(status === 404 ? "link.missing" : "link.failed")));
  setInterval(tick, 1000);
}

main();
