// The technician's page: check the hall in, tick the checklist, report and close incidents, and watch
// the hall's own status live. Changes go through the durable outbox (sent once, by op_id); while the
// page is open and online it also sends heartbeats with the measured round trip to the hub.

import { $, el } from "./dom.js";
import { startPage } from "./hub.js";
import { fmtNumber, fmtTime, langSwitch, register, t, translate } from "./i18n.js";
import { strings } from "./technician-strings.js";

register(strings);

const KINDS = ["audio", "video", "network", "power", "other"];
const conn = await startPage();
let lastRtt = null;

const siteId = () => conn.identity?.site;
const mine = () => conn.state?.sites.get(siteId());
const zone = () => conn.state?.event.timezone;
const pending = (type) => conn.outbox().filter((e) => e.type === type && e.fields.site === siteId());

/** The checks as the hub will have them once the outbox is sent. */
function checks(site) {
  const out = { ...site.checks };
  for (const entry of pending("site.check")) out[entry.fields.item] = entry.fields.ok;
  return out;
}

function renderStatus(site) {
  const status = $("status");
  status.className = `status status-${site.status}`;
  status.dataset.status = site.status;
  status.textContent = t(`status.${site.status}`);
  $("status-since").textContent = site.status_since ? t("st.since", { time: fmtTime(site.status_since, zone()) }) : "";
  const rtt = site.rtt_ms ?? lastRtt;
  $("link").textContent = site.link ? t(`link.${site.link}`, { ms: fmtNumber(Math.round(rtt)) }) : "–";
  $("link").dataset.link = site.link ?? "";
  $("heartbeat").textContent = fmtTime(site.last_heartbeat, zone(), { seconds: true });
  $("video").textContent = site.video ? t(`video.${site.video}`) : t("video.none");
  $("video").dataset.video = site.video ?? "";
  $("hint").textContent = hint(site);
}

/** Why the site is not ready, in the technician's words. */
function hint(site) {
  if (site.status === "lost") return t("hint.lost");
  if (site.status === "ready") return t("hint.ready");
  if (!site.checked_in) return t("hint.offline");
  const items = conn.state.config.checklist;
  const missing = items.filter((c) => c.required && site.checks[c.id] !== true).map((c) => c.name);
  const parts = missing.length ? [t("hint.missing", { items: missing.join(", ") })] : [];
  const videoItem = items.find((c) => c.id === "video_link");
  const unseen = { absent: "hint.video", no_video: "hint.no_video" }[site.video];
  if (unseen && site.checks.video_link === true && videoItem) parts.push(t(unseen, { item: videoItem.name }));
  if (site.open_incidents) parts.push(t("hint.incidents", { n: fmtNumber(site.open_incidents) }));
  return parts.join(" ");
}

function renderCheckin(site) {
  const form = $("checkin-form");
  if (site.technician && document.activeElement?.form !== form && !form.technician.value) form.technician.value = site.technician;
  const shown = $("checked-in");
  shown.hidden = !site.checked_in && !pending("site.checkin").length;
  shown.textContent = site.checked_in
    ? t("ci.done", { name: site.technician, time: fmtTime(site.checked_in, zone()) }) : t("ci.pending");
}

function renderChecklist(site) {
  const ticked = checks(site);
  const open = Boolean(site.checked_in || pending("site.checkin").length);
  $("checklist-note").hidden = open;
  $("checks").replaceChildren(...conn.state.config.checklist.map((item) => {
    const box = el("input", { type: "checkbox", checked: ticked[item.id] === true, disabled: !open, name: item.id });
    box.indeterminate = ticked[item.id] === undefined;
    box.addEventListener("change", () => {
      conn.submit("site.check", { site: siteId(), item: item.id, ok: box.checked });
      render();
    });
    const state = ticked[item.id] === undefined ? "unset" : ticked[item.id] ? "ok" : "notok";
    const word = el("span", { className: "check-state", textContent: t(`cl.${state}`) });
    const optional = item.required ? null : el("span", { className: "muted", textContent: ` (${t("cl.optional")})` });
    const li = el("li", {}, el("label", {}, box, el("span", { className: "name" }, item.name, optional)), word);
    li.dataset.item = item.id;
    li.dataset.state = state;
    return li;
  }));
}

function renderIncidents(site) {
  $("open-incidents").replaceChildren(...site.incidents.map((incident) => {
    const close = el("button", { type: "button", textContent: t("inc.close") });
    close.addEventListener("click", () => {
      conn.submit("site.incident", { site: siteId(), kind: incident.kind, open: false, incident: incident.id });
      close.disabled = true;
    });
    const li = el("li", {}, el("strong", { textContent: t(`incident.${incident.kind}`) }),
      incident.note ? el("span", { textContent: incident.note }) : null,
      el("span", { className: "muted", textContent: t("inc.since", { time: fmtTime(incident.opened, zone()) }) }), close);
    li.dataset.incident = incident.id;
    li.dataset.kind = incident.kind;
    return li;
  }));
  $("no-incidents").hidden = site.incidents.length > 0;
}

function drawQuickButtons() {
  $("quick").replaceChildren(...KINDS.map((kind) => {
    const button = el("button", { type: "button", className: `kind-${kind}` });
    button.textContent = kind === "other" ? t("inc.btn.other") : t(`incident.${kind}`);
    button.dataset.kind = kind;
    button.addEventListener("click", () => {
      if (!siteId()) return;
      conn.submit("site.incident", { site: siteId(), kind, open: true, note: $("incident-note").value.trim() });
      $("incident-note").value = "";
    });
    return button;
  }));
}

function renderOutbox() {
  const n = conn.outbox().length;
  $("outbox").hidden = n === 0;
  $("outbox").textContent = t("outbox.n", { n: fmtNumber(n) });
}

function render() {
  renderOutbox();
  const site = mine();
  if (!site) return;
  $("site-name").textContent = site.name;
  renderStatus(site);
  renderCheckin(site);
  renderChecklist(site);
  renderIncidents(site);
}

function problem(message) {
  $("problem").hidden = !message;
  $("problem").textContent = message ?? "";
}

/** One heartbeat with the round trip just measured; the hub judges the link from it. */
async function beat() {
  if (conn.status !== "online" || !siteId()) return;
  try {
    lastRtt = await conn.ping();
    await conn.send("site.heartbeat", { site: siteId(), rtt_ms: lastRtt });
  } catch (error) {
    if (error.code !== "offline") problem(t("failed", { message: error.message }));
  }
}

function heartbeatLoop() {
  const seconds = conn.state?.config.heartbeat.interval_seconds ?? 5;
  setTimeout(async () => {
    await beat();
    heartbeatLoop();
  }, seconds * 1000);
}

$("checkin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.target;
  const technician = form.technician.value.trim();
  if (!technician || !siteId()) return;
  const fields = { site: siteId(), technician };
  if (form.phone.value.trim()) fields.phone = form.phone.value.trim();
  conn.submit("site.checkin", fields);
  render();
});

conn.addEventListener("sent", ({ detail }) => {
  if (detail.error) problem(t("failed", { message: detail.error.message }));
  else problem(null);
  render();
});
conn.addEventListener("auth", ({ detail }) => {
  if (!detail.site) problem(t("nosite"));
  beat();
});
conn.addEventListener("state", render);
conn.addEventListener("outbox", render);
window.addEventListener("langchange", () => {
  drawQuickButtons();
  render();
});

langSwitch($("lang"));
translate();
drawQuickButtons();
render();
heartbeatLoop();
