// The report page. `/report` without a bearer header answers 401 with this small page; it takes the
// token from the URL fragment (so it never reaches a request line or a log), fetches the rendered
// report with `Authorization: Bearer`, shows it in place, and downloads the workbook, CSV and JSON
// the same way. Scripts skip all this and send the header themselves.
import { $, el } from "./dom.js";
import { askToken, readToken } from "./hub.js";
import { langFromAddress } from "./i18n.js";

const ASK = "Mã truy cập (quản trị, thư ký hoặc chủ trì) / Access token (admin, moderator or chair)";
const lang = langFromAddress(); // the switch below is a link to ?lang=; without one, this browser's last choice

function say(text) {
  const status = $("report-status");
  if (status) status.textContent = text;
}

function authed(url, token) {
  return fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
}

async function download(link, token) {
  const response = await authed(link.getAttribute("href"), token);
  if (!response.ok) {
    alert(`${response.status}: ${await response.text()}`);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const save = el("a", { href: url, download: link.dataset.download });
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function wire(token) {
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-download], [data-lang], [data-print]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.print !== undefined) window.print();
    else if (target.dataset.lang) location.assign(`/report?lang=${target.dataset.lang}`);
    else download(target, token);
  });
}

async function show(token) {
  const response = await authed(`/report?lang=${lang}`, token);
  if (response.status === 401) return show(await askToken(ASK));
  if (response.status === 403) {
    say("Mã này không được xem báo cáo. / This token may not read the report.");
    return show(await askToken(ASK));
  }
  if (!response.ok) {
    say(`Lỗi / Error ${response.status}: ${await response.text()}`);
    return;
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  document.replaceChild(document.adoptNode(doc.documentElement), document.documentElement);
  document.documentElement.dataset.report = "ready";
  wire(token);
}

say(lang === "en" ? "Loading the report…" : "Đang tải báo cáo…");
show(readToken() || (await askToken(ASK)));
