// The hall's big screen: the question on air, the site speaking, the totals. Read-only, viewer token.

import { strings } from "./chair-strings.js";
import { $, frameLoop, put } from "./dom.js";
import { startPage } from "./hub.js";
import { fmtNumber, langFromAddress, register, t, translate } from "./i18n.js";
import { questionCounts } from "./view.js";

register(strings);
let conn;

function render() {
  const state = conn.state;
  if (!state) return;
  put($("event-title"), state.event.title);
  put($("agenda"), state.agenda?.current?.title ?? "");
  const floor = state.floor || {};
  const q = floor.question ? state.questions.get(floor.question) : null;
  put($("site"), floor.site ? state.sites.get(floor.site)?.name ?? floor.site : "");
  put($("delegate"), q ? [q.delegate?.name, q.delegate?.unit].filter(Boolean).join(" — ") : "");
  put($("question"), q ? q.text : t("projector.nothing"));
  $("question").classList.toggle("empty", !q);
  $("site-label").hidden = !floor.site;
  $("question-label").hidden = !q;
  const agency = q?.agency ? state.config.agencies.find((a) => a.id === q.agency) : null;
  put($("agency"), agency ? `${t("projector.agency")}: ${agency.name}` : "");
  const tot = state.totals;
  put($("present"), fmtNumber(tot.attendance));
  put($("expected"), fmtNumber(tot.expected));
  put($("ready"), fmtNumber(tot.sites_ready));
  put($("sites"), fmtNumber(tot.sites));
  put($("answered"), fmtNumber(questionCounts(tot.questions).answered));
  document.body.dataset.seq = String(state.seq);
}

const schedule = frameLoop(render);

async function main() {
  document.documentElement.lang = langFromAddress(); // a screen has no switch: ?lang=en
  translate();
  conn = await startPage();
  conn.addEventListener("state", schedule);
  window.addEventListener("langchange", () => { translate(); schedule(); });
}

main();
