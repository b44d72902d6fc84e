// A small line chart of attendance and sites ready over time, drawn as inline SVG (no library, no network).

const NS = "http://www.w3.org/2000/svg";
const W = 360;
const H = 170;
const PAD = { left: 60, right: 44, top: 10, bottom: 22 }; // room for 3.321 sites on the right axis

/** An SVG element (createElementNS): `attrs` set as attributes, then its text. */
function svgEl(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A step line: a count holds until the next change, it does not slide towards it. */
function path(points, x, y) {
  return points.map((p, i) => (i ? `H${x(p[0]).toFixed(1)}V${y(p[1]).toFixed(1)}` : `M${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)).join("");
}

/**
 * Draw `timeline` ([[ts, present, ready], ...], ts in epoch seconds) into `svg`, replacing what was there.
 * Attendance is scaled to `expected` (left axis), sites ready to `sites` (right axis), both from zero.
 * The time axis runs to `now`: the last counts still hold, so the lines reach it too.
 */
export function drawTimeline(svg, timeline, { expected, sites, now, fmtNumber, fmtTime, labels }) {
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const last = timeline.at(-1);
  const points = last && now > last[0] ? [...timeline, [now, last[1], last[2]]] : timeline;
  const t0 = points.length ? points[0][0] : now - 60;
  const t1 = Math.max(points.length ? points[points.length - 1][0] : now, t0 + 60);
  const topPeople = Math.max(expected, ...points.map((p) => p[1]), 1);
  const topSites = Math.max(sites, 1);
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const yPeople = (v) => H - PAD.bottom - (v / topPeople) * (H - PAD.top - PAD.bottom);
  const ySites = (v) => H - PAD.bottom - (v / topSites) * (H - PAD.top - PAD.bottom);

  svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: yPeople(expected), y2: yPeople(expected), class: "chart-goal" }));
  for (const frac of [0, 0.5, 1]) {
    const y = H - PAD.bottom - frac * (H - PAD.top - PAD.bottom);
    svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "chart-grid" }));
    svg.append(svgEl("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end", class: "chart-axis people" },
      fmtNumber(Math.round(topPeople * frac))));
    svg.append(svgEl("text", { x: W - PAD.right + 6, y: y + 4, class: "chart-axis ready" },
      fmtNumber(Math.round(topSites * frac))));
  }
  svg.append(svgEl("text", { x: PAD.left, y: H - 6, class: "chart-axis" }, fmtTime(t0)));
  svg.append(svgEl("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "chart-axis" }, fmtTime(t1)));
  if (!points.length) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, labels.empty));
    return;
  }
  svg.append(svgEl("path", { d: path(points.map((p) => [p[0], p[1]]), x, yPeople), class: "chart-line people" }));
  svg.append(svgEl("path", { d: path(points.map((p) => [p[0], p[2]]), x, ySites), class: "chart-line ready" }));
  const title = svgEl("title", {}, labels.title);
  svg.prepend(title);
}
