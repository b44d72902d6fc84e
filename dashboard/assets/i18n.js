// Words, numbers and times for every page: Vietnamese first, English on a switch; times in the event's zone.

const LANG_KEY = "diemcau.lang";
const strings = { vi: {}, en: {} };

/** Add a page's strings: register({vi: {key: "..."}, en: {key: "..."}}). */
export function register(more) {
  for (const lang of Object.keys(more)) strings[lang] = { ...(strings[lang] || {}), ...more[lang] };
}

export function lang() {
  return localStorage.getItem(LANG_KEY) === "en" ? "en" : "vi";
}

export function locale() {
  return lang() === "vi" ? "vi-VN" : "en-GB";
}

/** `?lang=vi|en` in the address is the reader's choice, remembered like the switch's; returns the language now in use. */
export function langFromAddress() {
  const wanted = new URLSearchParams(location.search).get("lang");
  if (wanted === "vi" || wanted === "en") localStorage.setItem(LANG_KEY, wanted);
  return lang();
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value);
  document.documentElement.lang = value;
  translate();
  window.dispatchEvent(new CustomEvent("langchange", { detail: value }));
}

/** The string for `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  const text = strings[lang()][key] ?? strings.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? vars[name] : `{${name}}`));
}

const numberFormats = new Map(); // locale -> Intl.NumberFormat: making one costs far more than formatting with it

/** 2.300 in Vietnamese, 2,300 in English. */
export function fmtNumber(n) {
  if (n == null) return "–";
  const loc = locale();
  if (!numberFormats.has(loc)) numberFormats.set(loc, new Intl.NumberFormat(loc));
  return numberFormats.get(loc).format(n);
}

export function fmtPercent(part, whole) {
  if (!whole) return "–";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(part / whole);
}

/** A time of day in the event's time zone (07:31), optionally with the date. */
export function fmtTime(iso, timeZone, { date = false, seconds = false } = {}) {
  if (!iso) return "–";
  const options = { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (seconds) options.second = "2-digit";
  if (date) Object.assign(options, { day: "2-digit", month: "2-digit", year: "numeric" });
  return new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
}

/** A calendar date (YYYY-MM-DD) as the reader's locale writes it: 25/10/2023. */
export function fmtDate(day) {
  if (!day) return "–";
  return new Intl.DateTimeFormat(locale(), { timeZone: "UTC", day: "2-digit", month: "2-digit", year: "numeric" })
    .format(new Date(`${day.slice(0, 10)}T00:00:00Z`));
}

/** A duration as 1:05:09 or 4:07 (negative shown with a minus). */
export function fmtDuration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "–";
  const sign = seconds < 0 ? "−" : "";
  let s = Math.round(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${sign}${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** Fold Vietnamese for search as the hub does (hub/search.py): "Đào tạo" -> "dao tao", "Ia H'Drai" -> "ia hdrai". */
export function fold(text) {
  return (text || "").replace(/['\u2018\u2019\u02bc\-\u2010\u2011]/g, "").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
}

/** Fill every [data-i18n] element (and data-i18n-placeholder / -title / -aria-label) from the strings. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["placeholder", "title", "aria-label"]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.dataset[`i18n${camel(attr)}`]));
  }
}

function camel(attr) {
  return attr.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase());
}

/** A VI | EN switch in `el`. */
export function langSwitch(el) {
  el.classList.add("lang-switch");
  el.innerHTML = '<button type="button" data-lang="vi">VI</button><button type="button" data-lang="en">EN</button>';
  const mark = () => el.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", b.dataset.lang === lang()));
  el.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-lang]");
    if (button) setLang(button.dataset.lang);
    mark();
  });
  mark();
  document.documentElement.lang = lang();
}

register({
  vi: {
    "status.offline": "Chưa kết nối", "status.checking": "Đang kiểm tra", "status.ready": "Sẵn sàng",
    "status.degraded": "Có sự cố", "status.lost": "Mất kết nối",
    "q.submitted": "Mới gửi", "q.queued": "Chờ trả lời", "q.on_air": "Đang trả lời", "q.answered": "Đã trả lời",
    "q.deferred": "Trả lời bằng văn bản", "q.answered_written": "Đã trả lời bằng văn bản", "q.rejected": "Không tiếp nhận",
    "q.merged": "Đã gộp",
    "phase.setup": "Chuẩn bị", "phase.rehearsal": "Tổng duyệt", "phase.live": "Đang diễn ra", "phase.closed": "Đã kết thúc",
    "incident.audio": "Mất tiếng", "incident.video": "Mất hình", "incident.network": "Mất mạng",
    "incident.power": "Mất điện", "incident.other": "Sự cố khác",
    "video.present": "Có hình trên cầu truyền hình", "video.absent": "Cầu truyền hình không thấy điểm này",
    "video.unknown": "Chưa rõ tình trạng hình",
    "video.no_video": "Đã vào cầu truyền hình nhưng không có hình (chỉ nghe, chỉ tiếng hoặc chia sẻ màn hình)",
    "conn.connecting": "Đang kết nối…", "conn.online": "Đã kết nối", "conn.offline": "Mất kết nối — đang thử lại…",
    "conn.denied": "Mã truy cập không hợp lệ hoặc đã bị thu hồi",
    "agency.head": "Thủ trưởng dự", "agency.deputy": "Cấp phó dự thay", "agency.absent": "Vắng mặt",
  },
  en: {
    "status.offline": "Offline", "status.checking": "Checking", "status.ready": "Ready", "status.degraded": "Degraded",
    "status.lost": "Lost",
    "q.submitted": "Submitted", "q.queued": "Queued", "q.on_air": "On air", "q.answered": "Answered",
    "q.deferred": "Written answer due", "q.answered_written": "Answered in writing", "q.rejected": "Rejected",
    "q.merged": "Merged",
    "phase.setup": "Setup", "phase.rehearsal": "Rehearsal", "phase.live": "Live", "phase.closed": "Closed",
    "incident.audio": "No sound", "incident.video": "No picture", "incident.network": "Network down",
    "incident.power": "Power cut", "incident.other": "Other problem",
    "video.present": "Seen on the video bridge", "video.absent": "Not seen on the video bridge",
    "video.unknown": "Video bridge status unknown",
    "video.no_video": "In the video call, but no camera (listening, voice only or sharing a screen)",
    "conn.connecting": "Connecting…", "conn.online": "Connected", "conn.offline": "Connection lost — retrying…",
    "conn.denied": "Access token invalid or revoked",
    "agency.head": "Head present", "agency.deputy": "Deputy sent", "agency.absent": "Absent",
  },
});
