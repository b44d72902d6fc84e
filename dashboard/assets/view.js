// Pure helpers the chair, moderator and projector pages share: what counts as trouble, the queue, the clock.

import { t } from "./i18n.js";

export const TROUBLE = new Set(["lost", "degraded"]);
export const OPEN = new Set(["submitted", "queued", "on_air"]);

/** A site the chair should look at: not ready, an open incident, or the video bridge does not see it. */
export function isProblem(site) {
  return site.status !== "ready" || site.open_incidents > 0 || site.video === "absent";
}

/** An open incident as the chair and the moderator read it: what broke, then the technician's note. */
export function incidentText(incident) {
  const kind = t(`incident.${incident.kind}`);
  return incident.note ? `${kind}: ${incident.note}` : kind;
}

/** Milliseconds to add to the browser's clock to get the hub's, from a frame's `now`. */
export function clockSkew(frameNow, localMs = Date.now()) {
  const hub = Date.parse(frameNow ?? "");
  return Number.isNaN(hub) ? 0 : hub - localMs;
}

/** Seconds from an ISO time to `nowMs` (negative if it lies ahead); null without a time. */
export function secondsSince(iso, nowMs) {
  const t = Date.parse(iso ?? "");
  return Number.isNaN(t) ? null : (nowMs - t) / 1000;
}

/** Open questions in topic order, each group sorted by queue position: on air first, then queued, then new. */
export function queueByTopic(questions, topics) {
  const rank = { on_air: 0, queued: 1, submitted: 2 };
  const groups = new Map(topics.map((t) => [t.id, { topic: t, items: [] }]));
  for (const q of questions) {
    if (!OPEN.has(q.status)) continue;
    if (!groups.has(q.topic)) groups.set(q.topic, { topic: { id: q.topic, name: q.topic }, items: [] });
    groups.get(q.topic).items.push(q);
  }
  for (const g of groups.values()) {
    g.items.sort((a, b) => rank[a.status] - rank[b.status] || a.position - b.position || a.id.localeCompare(b.id));
  }
  return [...groups.values()];
}

/**
 * Counts the chair asks for, from the hub's per-status totals: answered (live or in writing), deferred, queued
 * (approved, waiting for the floor) and submitted (waiting for the moderator's approval), never summed into one
 * "waiting" that means one thing here and another there.
 */
export function questionCounts(byStatus = {}) {
  const n = (status) => byStatus[status] ?? 0;
  return {
    answered: n("answered") + n("answered_written"), deferred: n("deferred"),
    queued: n("queued"), submitted: n("submitted"), on_air: n("on_air"),
  };
}

/** How many more questions fit in `secondsLeft` at `avgSeconds` each; null while the pace is unknown. */
export function questionsThatFit(secondsLeft, avgSeconds) {
  if (!avgSeconds || avgSeconds <= 0) return null;
  return Math.max(0, Math.floor(Math.max(0, secondsLeft) / avgSeconds));
}

/** Sort key for tiles: trouble first (longest in trouble on top), then other problems, then the rest in config order. */
export function troubleRank(site) {
  if (TROUBLE.has(site.status)) return site.status === "lost" ? 0 : 1;
  return isProblem(site) ? 2 : 3;
}
