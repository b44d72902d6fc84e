// The chair's live view: tiles keyed by site id, updated only when their site changes, once per animation frame.
// With groups (a province's communes), one row per group first; a group's tiles are built when it is opened.

import { strings } from "./chair-strings.js";
import { drawTimeline } from "./chart.js";
import { watchDeadlines } from "./deadlines-panel.js";
import { $, el, frameLoop, put, toast } from "./dom.js";
import { wireDownloads, wireReportLinks } from "./download.js";
import { startPage } from "./hub.js";
import { fmtDate, fmtDuration, fmtNumber, fmtPercent, fmtTime, fold, langSwitch, register, t, translate } from "./i18n.js";
import { incidentText, isProblem, queueByTopic, questionCounts, questionsThatFit, secondsSince, TROUBLE, troubleRank } from "./view.js";

register(strings);
const MAX_TROUBLE = 24;
const MAX_NAMED = 30;
const PER_TOPIC = 4;
const SEARCH_OPENS = 300; // a search naming at most this many sites opens their groups to show them
const LIVE = new Set(["checking", "ready", "degraded"]);

const tiles = new Map(); // site id -> {el, parts, group, last, hb, rtt, since}, for the sites of opened groups
const groups = new Map(); // group name ("" for sites without one) -> {el, row, parts, tilesEl, ids, name, built}
const siteGroup = new Map(); // site id -> its group
const keys = new Map(); // site id -> folded search text
const opened = new Set(); // names of the groups the chair opened; kept across a full re-render
const searchOpened = new Set(); // names of the groups the current search opened to show its matches
const dirty = { full: true, sites: new Set(), questions: true };
let conn;
let chartKey = "";
let alertsKey = "";
let lastNext;

function part(node, cls) {
  return node.querySelector(`.${cls}`);
}

function ageText(seconds) {
  if (seconds == null) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("age.s", { n: s });
  if (s < 3600) return t("age.m", { n: Math.floor(s / 60) });
  return t("age.h", { n: Math.floor(s / 3600) });
}

/** "Mất kết nối: 2 · Có sự cố: 1" for the statuses that have any sites. */
function statusCounts(byStatus, statuses) {
  return statuses.filter((s) => byStatus[s]).map((s) => `${t(`status.${s}`)}: ${fmtNumber(byStatus[s])}`).join(" · ");
}

// -- groups and tiles -------------------------------------------------------------------------

/**
 * One section per group in config order. Sites without a group (all of them in a small event, the central hall
 * in a national one) are tiles with no row above them, always shown; a group with a name is a row to open.
 */
function buildGroups(state) {
  tiles.clear();
  groups.clear();
  siteGroup.clear();
  keys.clear();
  const fragment = document.createDocumentFragment();
  for (const site of state.sites.values()) {
    const name = site.group || "";
    let group = groups.get(name);
    if (!group) {
      group = newGroup(name);
      groups.set(name, group);
      fragment.append(group.el);
    }
    group.ids.push(site.id);
    siteGroup.set(site.id, group);
    keys.set(site.id, fold(`${site.name} ${site.id} ${site.group || ""}`));
  }
  $("tiles").replaceChildren(fragment);
  for (const group of groups.values()) showTiles(group, isOpen(group));
}

function isOpen(group) {
  return !group.row || opened.has(group.name) || searchOpened.has(group.name);
}

function newGroup(name) {
  const section = $("group-template").content.firstElementChild.cloneNode(true);
  const tilesEl = part(section, "group-tiles");
  const group = { el: section, tilesEl, ids: [], name, built: false, row: null, parts: {} };
  section.dataset.group = name;
  if (name) {
    group.row = part(section, "group-row");
    for (const key of ["name", "ready", "present", "trouble"]) group.parts[key] = part(section, `group-${key}`);
    group.parts.name.textContent = name;
    tilesEl.id = `group-${groups.size}`;
    group.row.setAttribute("aria-controls", tilesEl.id);
    group.row.addEventListener("click", () => toggleGroup(group));
  } else {
    part(section, "group-row").remove();
    section.style.order = "-1";
  }
  return group;
}

/** Open or close a group's tiles at the chair's click; the choice outlives a full re-render. */
function toggleGroup(group) {
  if (isOpen(group)) {
    opened.delete(group.name);
    searchOpened.delete(group.name);
  } else {
    opened.add(group.name);
  }
  applyFilters();
}

/** Show (building them the first time) or hide a group's tiles. */
function showTiles(group, visible) {
  if (visible && !group.built) buildTiles(group);
  group.tilesEl.hidden = !visible;
  if (group.row) {
    group.row.setAttribute("aria-expanded", String(visible));
    group.row.title = t(visible ? "group.hide" : "group.show", { group: group.name, n: fmtNumber(group.ids.length) });
  }
}

function buildTiles(group) {
  const template = $("tile-template").content.firstElementChild;
  const state = conn.state;
  const now = conn.serverNow();
  const timeout = state.config.heartbeat.timeout_seconds;
  const fragment = document.createDocumentFragment();
  for (const id of group.ids) {
    const site = state.sites.get(id);
    const tile = template.cloneNode(true);
    tile.dataset.site = id;
    const parts = {};
    for (const key of ["name", "status", "since", "present", "expected", "heartbeat", "incidents", "video"]) {
      parts[key] = part(tile, `tile-${key}`);
    }
    parts.meter = part(tile, "meter-fill");
    parts.name.textContent = site.name;
    const rec = { el: tile, parts, group, last: {}, hb: null, since: null };
    tiles.set(id, rec);
    updateTile(rec, site, timeout, now);
    fragment.append(tile);
  }
  group.tilesEl.append(fragment);
  group.built = true;
}

function updateTile(rec, site, timeout, now) {
  const { el: tile, parts, last } = rec;
  if (last.status !== site.status) {
    tile.dataset.status = site.status;
    parts.status.className = `status tile-status status-${site.status}`;
    parts.status.textContent = t(`status.${site.status}`);
    last.status = site.status;
  }
  const problem = isProblem(site);
  if (last.problem !== problem) {
    tile.classList.toggle("problem", problem);
    last.problem = problem;
  }
  put(parts.present, fmtNumber(site.present));
  put(parts.expected, fmtNumber(site.expected));
  const pct = `${Math.min(100, site.expected ? (100 * site.present) / site.expected : 0).toFixed(1)}%`;
  if (parts.meter.style.width !== pct) parts.meter.style.width = pct;
  const incidents = (site.incidents ?? []).map(incidentText);
  const joined = incidents.join("\n");
  if (last.incidents !== joined) {
    parts.incidents.replaceChildren(...incidents.map((text) => el("li", { textContent: text, title: text })));
    last.incidents = joined;
  }
  put(parts.video, site.video ? t(`tile.video.${site.video}`) : "");
  parts.video.classList.toggle("absent", site.video === "absent");
  parts.video.title = site.video ? t(`video.${site.video}`) : "";
  rec.hb = site.last_heartbeat ? Date.parse(site.last_heartbeat) : null;
  rec.rtt = site.rtt_ms == null ? null : Math.round(site.rtt_ms);
  rec.since = TROUBLE.has(site.status) && site.status_since ? Date.parse(site.status_since) : null;
  tile.setAttribute("aria-label", [`${site.name}: ${t(`status.${site.status}`)}, ${fmtNumber(site.present)} / ${fmtNumber(site.expected)}`,
    ...incidents].join("; "));
  tickTile(rec, timeout, now);
}

/**
 * The hub pushes heartbeat times at most every max(interval, sites / 100) seconds (every 5 s for Kon Tum, every
 * 33 s for 3,321 communes), so `last_heartbeat` can be older than the site's real last sign of life; while the
 * hub still counts the site live, the truth is "within the timeout".
 */
function heartbeatText(rec, timeout, now) {
  const age = rec.hb == null ? null : (now - rec.hb) / 1000;
  if (age == null) return [t("tile.no_heartbeat"), false];
  const live = LIVE.has(rec.last.status);
  const text = live && age > timeout ? t("tile.within", { n: fmtNumber(timeout) }) : ageText(age);
  return [t("tile.heartbeat", { age: text }) + (rec.rtt != null && live ? ` · ${fmtNumber(rec.rtt)} ms` : ""), !live && age > timeout];
}

function tickTile(rec, timeout, now) {
  const [text, stale] = heartbeatText(rec, timeout, now);
  put(rec.parts.heartbeat, text);
  rec.parts.heartbeat.classList.toggle("stale", stale);
  put(rec.parts.since, rec.since == null ? "" : t("tile.since", { d: fmtDuration((now - rec.since) / 1000) }));
}

/** A group's row: sites ready of all, people present against expected, sites in trouble; lifted while it has any. */
function updateGroups(state, touched) {
  for (const group of touched) {
    let ready = 0, present = 0, expected = 0, problems = 0;
    const by = {};
    for (const id of group.ids) {
      const s = state.sites.get(id);
      ready += s.status === "ready";
      present += s.present;
      expected += s.expected;
      problems += isProblem(s);
      if (TROUBLE.has(s.status)) by[s.status] = (by[s.status] ?? 0) + 1;
    }
    const trouble = (by.lost ?? 0) + (by.degraded ?? 0);
    group.el.classList.toggle("has-problem", problems > 0);
    group.el.classList.toggle("has-trouble", trouble > 0);
    if (!group.row) continue;
    put(group.parts.ready, t("group.ready", { ready: fmtNumber(ready), all: fmtNumber(group.ids.length) }));
    put(group.parts.present, t("group.present", { present: fmtNumber(present), expected: fmtNumber(expected) }));
    put(group.parts.trouble, statusCounts(by, ["lost", "degraded"]));
    group.el.style.order = trouble ? "0" : "1";
  }
}

// -- the shared parts -------------------------------------------------------------------------

function renderHeader(state) {
  put($("event-title"), state.event.title);
  document.title = `${t("chair.heading")} — ${state.event.title}`;
  const phase = $("phase");
  phase.dataset.phase = state.event.phase;
  put(phase, t(`phase.${state.event.phase}`));
}

function renderTotals(state) {
  const tot = state.totals;
  put($("present"), fmtNumber(tot.attendance));
  put($("expected"), fmtNumber(tot.expected));
  put($("present-pct"), t("kpi.pct", { pct: fmtPercent(tot.attendance, tot.expected) }));
  put($("ready"), fmtNumber(tot.sites_ready));
  put($("sites-total"), fmtNumber(tot.sites));
  put($("status-counts"), statusCounts(tot.sites_by_status || {}, ["lost", "degraded", "checking", "offline"]));
  const n = questionCounts(tot.questions);
  put($("q-answered"), fmtNumber(n.answered));
  put($("q-deferred"), fmtNumber(n.deferred));
  put($("q-queued"), fmtNumber(n.queued));
  put($("q-submitted"), fmtNumber(n.submitted));
  renderCategories(state);
}

function renderCategories(state) {
  const list = $("categories");
  const by = state.totals.by_category || {};
  const cats = state.config.categories;
  if (list.children.length !== cats.length) {
    list.replaceChildren(...cats.map((c) => {
      const li = el("li", { innerHTML: '<span class="name"></span><span class="n"></span><span class="meter"><span class="meter-fill"></span></span>' });
      li.dataset.category = c.id;
      return li;
    }));
  }
  const total = Math.max(1, state.totals.attendance);
  cats.forEach((c, i) => {
    const li = list.children[i];
    put(li.querySelector(".name"), c.name);
    put(li.querySelector(".n"), fmtNumber(by[c.id] ?? 0));
    li.querySelector(".meter-fill").style.width = `${((100 * (by[c.id] ?? 0)) / total).toFixed(1)}%`;
  });
}

function siteName(state, id) {
  return state.sites.get(id)?.name ?? id ?? "–";
}

function describe(state, q) {
  const who = [q.delegate?.name, q.delegate?.unit].filter(Boolean).join(", ");
  return `${siteName(state, q.site)}${who ? ` — ${who}` : ""}: ${q.text}`;
}

function renderFloor(state, now) {
  const cur = state.agenda?.current;
  put($("agenda-current"), cur ? `${cur.title}${cur.started ? ` (${t("now.since", { at: fmtTime(cur.started, state.event.timezone) })})` : ""}` : t("now.no_agenda"));
  renderPace(state.agenda, state.event.timezone);
  const floor = state.floor || {};
  let text = t("now.nobody");
  if (floor.site) {
    const q = floor.question ? state.questions.get(floor.question) : null;
    const spoken = floor.since ? ` (${fmtDuration(secondsSince(floor.since, now))})` : "";
    text = (q ? describe(state, q) : siteName(state, floor.site)) + spoken;
  }
  put($("floor-now"), text);
  $("floor-now").classList.toggle("empty", !floor.site);
  const next = floor.next ? state.questions.get(floor.next) : null;
  put($("floor-next"), next ? describe(state, next) : t("now.no_next"));
  $("floor-next").classList.toggle("empty", !next);
  $("call-next").hidden = !next;
}

/** The chair may call the suggested next question's site to the floor (`floor.call` puts it on air). */
async function callNext() {
  const next = conn.state?.floor?.next ? conn.state.questions.get(conn.state.floor.next) : null;
  if (!next) return;
  try {
    await conn.send("floor.call", { site: next.site, question: next.id });
  } catch (error) {
    toast(t("now.call_failed", { reason: error.message }));
  }
}

/** How far behind (or ahead of) plan the programme runs, and when it will end at the planned pace. */
function renderPace(agenda, timeZone) {
  const pace = $("agenda-pace");
  const behind = agenda?.behind_seconds;
  const minutes = Math.round(Math.abs(behind ?? 0) / 60);
  const side = behind == null ? "" : minutes === 0 ? "on-plan" : behind > 0 ? "behind" : "ahead";
  const parts = { behind: t("now.behind", { n: fmtNumber(minutes) }), ahead: t("now.ahead", { n: fmtNumber(minutes) }),
    "on-plan": t("now.on_plan") };
  const text = [parts[side], agenda?.forecast_end ? t("now.forecast_end", { at: fmtTime(agenda.forecast_end, timeZone) }) : null];
  put(pace, text.filter(Boolean).join(" · "));
  if (pace.dataset.pace !== side) pace.dataset.pace = side;
}

function renderQueue(state) {
  const root = $("queue");
  const next = state.floor?.next;
  const out = [];
  for (const { topic, items } of queueByTopic(state.questions.values(), state.config.topics)) {
    const shown = items.filter((q) => q.status !== "submitted");
    const pending = items.length - shown.length;
    const count = t("queue.count", { n: fmtNumber(shown.length) }) + (pending ? ` · ${t("queue.pending", { n: fmtNumber(pending) })}` : "");
    const section = el("section", { className: "topic" },
      el("h3", {}, el("span", { textContent: topic.name }), el("span", { className: "count", textContent: count })));
    section.dataset.topic = topic.id;
    if (shown.length) {
      section.append(el("ol", {}, ...shown.slice(0, PER_TOPIC).map((q) => queueItem(state, q, q.id === next))));
      if (shown.length > PER_TOPIC) {
        section.append(el("p", { className: "more", textContent: t("queue.more", { n: fmtNumber(shown.length - PER_TOPIC) }) }));
      }
    }
    out.push(section);
  }
  root.replaceChildren(...out);
}

function queueItem(state, q, isNext) {
  const li = el("li", { className: `${q.status}${isNext ? " next" : ""}` });
  li.dataset.question = q.id;
  if (q.status === "on_air" || isNext) {
    li.append(el("span", { className: "tag", textContent: q.status === "on_air" ? t("q.on_air") : t("now.next") }));
  }
  li.append(el("span", { className: "who", textContent: `${siteName(state, q.site)} — ${q.delegate?.name ?? ""}` }),
    el("span", { className: "text", textContent: q.text }));
  return li;
}

/** Redrawn when the timeline moves and as time passes: its axis runs to now (to the close once closed). */
function renderChart(state, now) {
  const line = state.timeline || [];
  const closed = state.event.phase === "closed" ? Date.parse(state.event.phase_history?.at(-1)?.at ?? "") : NaN;
  const end = Math.floor((Number.isNaN(closed) ? now : closed) / 1000);
  const key = `${document.documentElement.lang}:${line.length}:${line.at(-1)?.join(",")}:${Math.floor(end / 10)}`;
  if (key === chartKey) return;
  chartKey = key;
  const tz = state.event.timezone;
  drawTimeline($("chart"), line, {
    expected: state.totals.expected, sites: state.totals.sites, now: end, fmtNumber,
    fmtTime: (ts) => fmtTime(new Date(ts * 1000).toISOString(), tz),
    labels: { empty: t("chart.empty"), title: t("chair.chart") },
  });
}

// -- every second: ages, time left, trouble, deadline ------------------------------------------

function renderClock(state, now) {
  const tz = state.event.timezone;
  put($("clock"), fmtTime(new Date(now).toISOString(), tz, { seconds: true }));
  const starts = Date.parse(state.event.session_starts_at);
  const ends = Date.parse(state.event.session_ends_at);
  const kpi = $("time-left").closest(".kpi");
  let label, value, note = "";
  if (state.event.phase === "closed") {
    label = t("kpi.closed");
    value = fmtTime(state.event.phase_history?.at(-1)?.at ?? state.event.session_ends_at, tz);
  } else if (Number.isNaN(starts)) {
    label = t("kpi.planned_start");  // a run on another day: its plan starts when it goes live
    value = t("kpi.at_opening");
    note = t("kpi.another_day", { date: fmtDate(state.event.date) });
  } else if (now < starts) {
    label = t("kpi.starts_in");
    value = fmtDuration((starts - now) / 1000);
    note = t("kpi.deadline_at", { at: fmtTime(state.event.readiness_deadline, tz) });
  } else if (state.event.phase !== "live" && now > ends) {
    label = t("kpi.planned_start");  // no run open and the configured day is past: when it was planned
    value = fmtTime(state.event.session_starts_at, tz, { date: true });
  } else if (now <= ends) {
    label = t("kpi.time_left");
    value = fmtDuration((ends - now) / 1000);
    note = fitNote(state, (ends - now) / 1000);
  } else {
    label = t("kpi.overtime");
    value = fmtDuration((now - ends) / 1000);
  }
  kpi.classList.toggle("over", state.event.phase === "live" && now > ends);  // red for overtime only, not a planned start
  put($("time-label"), label);
  put($("time-left"), value);
  put($("fit"), note);
}

/** Questions that fit count the queued ones only: those awaiting approval may never reach the floor. */
function fitNote(state, secondsLeft) {
  const queued = questionCounts(state.totals.questions).queued;
  const avg = state.totals.avg_answer_seconds;
  const fit = questionsThatFit(secondsLeft, avg);
  if (fit == null) return t("kpi.fit_unknown", { queued: fmtNumber(queued) });
  return t("kpi.fit", { fit: fmtNumber(Math.min(fit, queued)), queued: fmtNumber(queued), avg: fmtDuration(avg) });
}

/**
 * Every site in trouble, whichever group it is in, lost before degraded and longest first, with what is wrong
 * (its open incidents in words) and its group. Rebuilt only when that changes, so a focused item stays;
 * the durations tick in place. Returns how many items the banner holds.
 */
function renderTrouble(state, now) {
  const trouble = [...state.sites.values()].filter((s) => TROUBLE.has(s.status))
    .sort((a, b) => troubleRank(a) - troubleRank(b) || Date.parse(a.status_since) - Date.parse(b.status_since));
  const shown = trouble.slice(0, MAX_TROUBLE).map((s) => ({ site: s, incidents: (s.incidents ?? []).map(incidentText) }));
  const list = $("trouble");
  const key = JSON.stringify([document.documentElement.lang, trouble.length,
    shown.map((x) => [x.site.id, x.site.status, x.site.status_since, x.incidents])]);
  if (key !== alertsKey) {
    alertsKey = key;
    const items = shown.map(({ site, incidents }) => troubleItem(site, incidents));
    if (trouble.length > MAX_TROUBLE) {
      items.push(el("li", { className: "more", textContent: t("alerts.more", { n: fmtNumber(trouble.length - MAX_TROUBLE) }) }));
    }
    list.replaceChildren(...items);
  }
  for (const long of list.querySelectorAll(".how-long")) {
    put(long, t("tile.since", { d: fmtDuration(secondsSince(long.dataset.since, now)) }));
  }
  return list.children.length;
}

/**
 * A site in the banner: name, group, status, how long, then each open incident on a line of its own (so every
 * kind shows, however long a note). A button: it opens the site's group and brings its tile into view.
 */
function troubleItem(site, incidents) {
  const where = el("span", { className: "where", textContent: site.name });
  if (site.group) where.append(" ", el("span", { className: "in-group", textContent: site.group }));
  const long = el("span", { className: "how-long" });
  long.dataset.since = site.status_since ?? "";
  const button = el("button", { type: "button", className: "reveal" },
    where, el("span", { className: "status-word", textContent: t(`status.${site.status}`) }), long,
    ...incidents.map((text) => el("span", { className: "incident", textContent: text, title: text })));
  button.addEventListener("click", () => reveal(site.id));
  const li = el("li", { className: site.status }, button);
  li.dataset.site = site.id;
  return li;
}

/** Open the site's group (clearing a search that hides it) and bring its tile into view. */
function reveal(id) {
  const group = siteGroup.get(id);
  if (!group) return;
  const search = !keys.get(id).includes(fold($("site-search").value.trim()));
  if (search) $("site-search").value = "";
  if (group.row) opened.add(group.name);
  applyFilters(search);
  const tile = tiles.get(id).el;
  tile.scrollIntoView({ block: "center" });
  tile.focus({ preventScroll: true });
}

function renderAlerts(state, now) {
  const items = renderTrouble(state, now);
  const deadline = deadlineText(state, now);
  const box = $("deadline-alert");
  box.hidden = !deadline;
  put(box, deadline);
  $("alerts").hidden = !items && !deadline;
}

/** After the readiness deadline and until the session ends, name every site not yet ready. */
function deadlineText(state, now) {
  const due = Date.parse(state.event.readiness_deadline);
  if (Number.isNaN(due) || now < due || now > Date.parse(state.event.session_ends_at) || state.event.phase === "closed") return "";
  const late = [...state.sites.values()].filter((s) => s.status !== "ready");
  if (!late.length) return "";
  const names = late.slice(0, MAX_NAMED).map((s) => s.name).join(", ");
  const more = late.length > MAX_NAMED ? ` ${t("alerts.and_more", { n: fmtNumber(late.length - MAX_NAMED) })}` : "";
  return t("alerts.deadline", { at: fmtTime(state.event.readiness_deadline, state.event.timezone), n: fmtNumber(late.length) }) + ` ${names}${more}`;
}

function tick() {
  const state = conn.state;
  if (!state) return;
  const now = conn.serverNow();
  const timeout = state.config.heartbeat.timeout_seconds;
  for (const rec of tiles.values()) tickTile(rec, timeout, now);
  renderClock(state, now);
  renderAlerts(state, now);
  renderFloor(state, now);
  renderChart(state, now);
}

// -- filters ----------------------------------------------------------------------------------

/**
 * The search (diacritics optional) and "only problem sites" are classes, not re-renders. A new search naming at
 * most SEARCH_OPENS sites opens the groups holding them (`searched`); clearing it restores the chair's choice.
 */
function applyFilters(searched = false) {
  const state = conn.state;
  const query = fold($("site-search").value.trim());
  const only = $("only-problems").checked;
  $("tiles").classList.toggle("only-problems", only);
  const matched = new Set();
  const holding = new Set();
  let shown = 0;
  for (const [id, key] of keys) {
    if (query && !key.includes(query)) continue;
    matched.add(id);
    holding.add(siteGroup.get(id));
    if (!only || isProblem(state.sites.get(id))) shown += 1;
  }
  if (searched) searchOpened.clear();
  const opens = searched && query !== "" && matched.size <= SEARCH_OPENS;
  for (const group of groups.values()) {
    group.el.classList.toggle("unmatched", !holding.has(group));
    if (opens && group.row && holding.has(group)) searchOpened.add(group.name);
    if (group.row) showTiles(group, isOpen(group));
  }
  for (const [id, rec] of tiles) rec.el.classList.toggle("unmatched", !matched.has(id));
  put($("shown-count"), t("chair.shown", { n: fmtNumber(shown), all: fmtNumber(keys.size) }));
}

// -- the frame loop ---------------------------------------------------------------------------

const schedule = frameLoop(flush);

function flush() {
  const state = conn.state;
  if (!state) return;
  const now = conn.serverNow();
  const timeout = state.config.heartbeat.timeout_seconds;
  const first = !groups.size;
  if (dirty.full) buildGroups(state);
  const ids = dirty.full ? [] : [...dirty.sites];
  const touched = new Set(dirty.full ? groups.values() : []);
  for (const id of ids) {
    const site = state.sites.get(id);
    const rec = tiles.get(id);
    if (!site || !siteGroup.has(id)) continue;
    if (rec) updateTile(rec, site, timeout, now);
    touched.add(siteGroup.get(id));
  }
  updateGroups(state, touched);
  if (state.floor?.next !== lastNext) {
    lastNext = state.floor?.next;
    dirty.questions = true;
  }
  renderHeader(state);
  renderTotals(state);
  if (dirty.questions) renderQueue(state);
  renderChart(state, now);
  renderClock(state, now);
  renderAlerts(state, now);
  renderFloor(state, now);
  if (dirty.full || (ids.length && ($("only-problems").checked || $("site-search").value))) applyFilters();
  dirty.full = false;
  dirty.sites.clear();
  dirty.questions = false;
  document.body.dataset.seq = String(state.seq);
  if (first) performance.mark("diemcau:first-render");
}

/** Which node of a cluster the page is on, while online: the usual reconnecting banner covers the rest. */
function showNode() {
  const node = conn.status === "online" ? conn.identity?.node : null;
  $("node").hidden = !node;
  put($("node"), node ? t("chair.node", { node }) : "");
}

function relabel() {
  translate();
  showNode();
  for (const rec of tiles.values()) rec.last = {};
  dirty.full = false;
  if (conn?.state) {
    for (const id of conn.state.sites.keys()) dirty.sites.add(id);
    dirty.questions = true;
    chartKey = "";
    applyFilters();
    schedule();
  }
}

async function main() {
  langSwitch($("lang"));
  translate();
  conn = await startPage();
  conn.addEventListener("state", (e) => {
    const d = e.detail;
    if (d.full) dirty.full = true;
    for (const id of d.sites) dirty.sites.add(id);
    if (d.full || d.questions.length) dirty.questions = true;
    schedule();
  });
  watchDeadlines(conn, $("deadlines"));
  for (const name of ["status", "nodes"]) conn.addEventListener(name, showNode);
  showNode();
  window.addEventListener("langchange", relabel);
  $("call-next").addEventListener("click", callNext);
  $("only-problems").addEventListener("change", () => applyFilters());
  $("site-search").addEventListener("input", () => applyFilters(true));
  wireReportLinks(document.querySelector(".links"), conn);
  wireDownloads(document.querySelector(".links"), conn, (status) => toast(t(status === 404 ? "link.missing" : "link.failed")));
  setInterval(tick, 1000);
}

main();
