// The answering agencies' progress against the plan's deadlines, for the chair and the moderator: one panel,
// fed by GET /api/deadlines on load and again (at most every 10 s) while the questions change.

import { strings } from "./deadlines-panel-strings.js";
import { el } from "./dom.js";
import { fmtDate, fmtNumber, register, t } from "./i18n.js";

register(strings);

const EVERY_MS = 10000;

/** Why an agency is late, in words: "chưa có dự thảo trả lời 2 câu; quá hạn …". */
function lateReasons(row) {
  return row.late.map((reason) => (reason === "draft_answers"
    ? t("dlp.late_draft", { n: fmtNumber(row.to_draft - row.drafted) })
    : t("dlp.late_written", { n: fmtNumber(row.overdue) }))).join("; ");
}

function lateAlert(report) {
  const late = report.agencies.filter((r) => r.late.length);
  if (!late.length) return null;
  const list = el("ul", {}, ...late.map((r) => {
    const li = el("li", {}, el("strong", { textContent: r.name }), ` — ${lateReasons(r)}`);
    li.dataset.agency = r.id;
    return li;
  }));
  return el("div", { className: "alert dlp-late", role: "alert" }, el("span", { textContent: t("dlp.late") }), list);
}

function agencyTable(report) {
  const rows = report.agencies.filter((r) => r.assigned || r.late.length);
  if (!rows.length) return el("p", { className: "muted", textContent: t("dlp.none") });
  const head = el("tr", {}, ...["dlp.agency", "dlp.drafts", "dlp.written", "dlp.outstanding", "dlp.overdue"]
    .map((key) => el("th", { scope: "col", textContent: t(key) })));
  const body = rows.map((r) => {
    const tr = el("tr", { className: r.late.length ? "late" : "" },
      el("th", { scope: "row", textContent: r.name }),
      el("td", { textContent: `${fmtNumber(r.drafted)}/${fmtNumber(r.to_draft)}` }),
      el("td", { textContent: `${fmtNumber(r.written)}/${fmtNumber(r.deferred)}` }),
      el("td", { textContent: fmtNumber(r.outstanding) }),
      el("td", { className: r.overdue ? "overdue" : "", textContent: fmtNumber(r.overdue) }));
    tr.dataset.agency = r.id;
    return tr;
  });
  return el("table", { className: "dlp-agencies" }, el("thead", {}, head), el("tbody", {}, ...body));
}

function dateList(report) {
  return el("ul", { className: "dlp-dates" }, ...report.deadlines.filter((d) => d.date).map((d) => {
    const notes = [d.passed ? t("dlp.passed") : null, d.missing ? t("dlp.missing", { n: fmtNumber(d.missing) }) : null]
      .filter(Boolean).join(", ");
    const li = el("li", { className: [d.passed ? "passed" : "", d.late ? "late" : ""].join(" ").trim() },
      el("span", { textContent: t(`dlp.d.${d.id}`) }), el("strong", { textContent: fmtDate(d.date) }),
      notes ? el("span", { className: "muted", textContent: `(${notes})` }) : null);
    li.dataset.deadline = d.id;
    return li;
  }));
}

/** Render one report into `root`: the late agencies called out, their counts, and (if asked) the deadline dates. */
export function renderDeadlines(root, report, { dates = false } = {}) {
  root.replaceChildren(...[lateAlert(report), agencyTable(report), dates ? dateList(report) : null].filter(Boolean));
  root.dataset.late = report.late_agencies.join(" ");
}

/** Keep `root` showing the hub's deadlines report: fetched on the first state, then throttled while questions change. */
export function watchDeadlines(conn, root, options = {}) {
  let report = null;
  let last = -Infinity;
  let timer = null;
  let busy = false;
  let again = false;

  async function load() {
    timer = null;
    busy = true;
    last = performance.now();
    try {
      const response = await conn.fetch("/api/deadlines");
      if (!response.ok) throw new Error(String(response.status));
      report = await response.json();
      renderDeadlines(root, report, options);
    } catch {
      if (!report) root.replaceChildren(el("p", { className: "muted", textContent: t("dlp.unavailable") }));
    } finally {
      busy = false;
      if (again) soon();
    }
  }

  function soon() {
    again = busy;
    if (timer || busy) return;
    timer = setTimeout(load, Math.max(0, last + EVERY_MS - performance.now()));
  }

  conn.addEventListener("state", (e) => {
    if (e.detail.full || e.detail.questions.length) soon();
  });
  setInterval(soon, 60 * 1000); // a deadline can pass while nothing changes: look again every minute
  window.addEventListener("langchange", () => report && renderDeadlines(root, report, options));
}
