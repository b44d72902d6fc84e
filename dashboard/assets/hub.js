// The shared browser client of every diemcau page: token from the URL fragment, one websocket with
// auth, subscribe and resume by seq, reconnect with backoff and jitter, the merged live state, and a
// durable outbox (localStorage) so changes made offline are sent exactly once when the hall is back.

import { t } from "./i18n.js";

const TOKEN_KEY = "diemcau.token";
const NO_OP_ID = new Set(["subscribe", "ping", "site.heartbeat"]);
const RETRYABLE = new Set(["rate_limited", "internal_error"]);

/** The page's token: from `#token=` (then removed from the address bar), else this tab's memory. */
export function readToken() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (match) {
    const token = decodeURIComponent(match[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Ask for a token with a small form when the link carried none; resolves with what was typed. */
export function askToken(message) {
  return new Promise((resolve) => {
    const form = document.createElement("form");
    form.className = "token-form";
    form.innerHTML = `<label><span></span><input name="token" autocomplete="off" required></label>
      <button type="submit">OK</button>`;
    form.querySelector("span").textContent = message;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const token = form.token.value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      form.remove();
      resolve(token);
    });
    document.body.prepend(form);
    form.token.focus();
  });
}

/** A fresh op_id that sorts by time: the time in ms (12 hex digits), then 80 random bits. The hub's
 * log indexes op_ids: ids arriving in time order go in at the index's end, where random ones would
 * rewrite a page of it per command (see new_op_id in sites/client.py). */
export function newOpId() {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => b.toString(16).padStart(2, "0"));
  return Date.now().toString(16).padStart(12, "0") + random.join("");
}

/** A failed command: `code` is the contract's error code. */
export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * One live connection to the hub.
 * Events: "status" (detail: "connecting" | "online" | "offline" | "denied"), "auth" (identity),
 * "state" (detail: {full, sites, questions, frame}: ids that changed), "outbox" (detail: pending count).
 */
export class HubConnection extends EventTarget {
  constructor(token, { subscribe = true, url } = {}) {
    super();
    this.token = token;
    this.subscribe = subscribe;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.status = "connecting";
    this.identity = null;
    this.state = null;
    this.skewMs = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.outboxKey = `diemcau.outbox.${token.split(".")[0]}`;
  }

  start() {
    this._open();
    window.addEventListener("online", () => this.reconnectNow());
    // Chromium keeps a dead socket open when the network goes; close it so the page says offline at once.
    window.addEventListener("offline", () => this.ws && this.ws.close());
    return this;
  }

  /** Connect again now, without waiting out the backoff: the network is back, or the user asked. A socket
   * still opening (perhaps over a network that has gone) is dropped; if online already, the outbox is sent.
   * The new socket opens on the next turn of the event loop, once the browser's `online` has settled. */
  reconnectNow() {
    if (this.status === "denied" || this.stopped) return;
    if (this.status === "online") {
      this._flush();
      return;
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.ws?.close();
    this._reconnectSoon(0);
  }

  /** Server time now, corrected for this browser's clock skew. */
  serverNow() {
    return Date.now() + this.skewMs;
  }

  /** Send a command and resolve with its result; rejects with CommandError. */
  send(type, fields = {}) {
    if (this.status !== "online") return Promise.reject(new CommandError("offline", "not connected"));
    const id = this.nextId++;
    const frame = { id, type, ...fields };
    if (!NO_OP_ID.has(type) && !frame.op_id) frame.op_id = newOpId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify(frame));
    });
  }

  /** Round-trip time of a ping, in milliseconds. */
  async ping() {
    const started = performance.now();
    await this.send("ping", {});
    return Math.round(performance.now() - started);
  }

  /** Queue a state-changing command durably: kept across reloads, sent once online, exactly once by op_id. */
  submit(type, fields = {}) {
    const entry = { op_id: newOpId(), type, fields, queued: Date.now() };
    const outbox = this.outbox();
    outbox.push(entry);
    this._saveOutbox(outbox);
    if (this.status === "online") this._flush();
    return entry.op_id;
  }

  outbox() {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey) || "[]");
    } catch {
      return [];
    }
  }

  _saveOutbox(outbox) {
    localStorage.setItem(this.outboxKey, JSON.stringify(outbox));
    this._emit("outbox", outbox.length);
  }

  /** Send the outbox in order, one at a time; an entry queued meanwhile is sent by the same pass. */
  async _flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      let entry;
      while (this.status === "online" && (entry = this.outbox()[0])) {
        let outcome;
        try {
          outcome = { result: await this.send(entry.type, { ...entry.fields, op_id: entry.op_id }) };
        } catch (error) {
          if (error.code === "offline" || RETRYABLE.has(error.code)) break;
          outcome = { error };
        }
        this._saveOutbox(this.outbox().filter((e) => e.op_id !== entry.op_id));
        this._emit("sent", { entry, ...outcome });
      }
    } finally {
      this.flushing = false;
    }
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _open() {
    this._setStatus(this.state ? "offline" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: this.token }));
    ws.onmessage = (msg) => this._receive(JSON.parse(msg.data));
    ws.onclose = () => this._closed(ws);
  }

  _closed(ws) {
    if (ws !== this.ws) return;
    for (const { reject } of this.pending.values()) reject(new CommandError("offline", "connection lost"));
    this.pending.clear();
    if (this.status === "denied" || this.stopped) return;
    this._setStatus("offline");
    this._reconnectSoon();
  }

  _reconnectSoon(delay) {
    if (this.status === "online" || this.status === "denied" || this.timer) return;
    const base = Math.min(15000, 500 * 2 ** this.attempt++);
    const wait = delay ?? base / 2 + Math.random() * base / 2;
    this.timer = setTimeout(() => {
      this.timer = null;
      this._open();
    }, wait);
  }

  _receive(frame) {
    if (frame.now) this.skewMs = Date.parse(frame.now) - Date.now();
    switch (frame.type) {
      case "auth_ok":
        this.identity = frame;
        this.attempt = 0;
        this._setStatus("online");
        this._emit("auth", frame);
        if (this.subscribe) {
          const since = this.state ? { since: this.state.seq } : {};
          this.send("subscribe", since).catch(() => {});
        }
        this._flush();
        return;
      case "auth_invalid":
        this._setStatus("denied");
        sessionStorage.removeItem(TOKEN_KEY);
        return;
      case "result": {
        const waiting = this.pending.get(frame.id);
        if (!waiting) return;
        this.pending.delete(frame.id);
        if (frame.success) waiting.resolve(frame.result);
        else waiting.reject(new CommandError(frame.error.code, frame.error.message));
        return;
      }
      case "snapshot":
        this.state = toState(frame.state);
        this._emit("state", { full: true, sites: [], questions: [], frame });
        return;
      case "event":
        if (!this.state) return;
        this._emit("state", mergeFrame(this.state, frame, this.identity.shared));
        return;
    }
  }
}

/** A snapshot as the pages hold it: sites and questions in Maps keyed by id (insertion order kept). */
function toState(snapshot) {
  return {
    ...snapshot,
    sites: new Map(snapshot.sites.map((s) => [s.id, s])),
    questions: new Map(snapshot.questions.map((q) => [q.id, q])),
  };
}

/**
 * Merge a pushed frame in place; return which ids changed so pages re-render only those. `shared` is the list of
 * shared parts the hub named in auth_ok: each present is replaced whole, but for `timeline_tail`, which extends the
 * timeline.
 */
function mergeFrame(state, frame, shared) {
  state.seq = Math.max(state.seq, frame.seq);
  for (const key of shared) {
    if (!(key in frame)) continue;
    if (key === "timeline_tail") mergeTail(state, frame.timeline_tail);
    else state[key] = frame[key];
  }
  for (const site of frame.sites || []) state.sites.set(site.id, site);
  for (const q of frame.questions || []) state.questions.set(q.id, q);
  return {
    full: false,
    sites: (frame.sites || []).map((s) => s.id),
    questions: (frame.questions || []).map((q) => q.id),
    frame,
  };
}

/** The hub re-sends the timeline's last points only: drop ours from the first of them on, then take theirs. */
function mergeTail(state, tail) {
  if (tail.length) state.timeline = (state.timeline || []).filter((point) => point[0] < tail[0][0]).concat(tail);
}

/** Start a page: read (or ask for) the token, connect, and keep the `[data-connection]` banner current. */
export async function startPage({ askMessage = "Mã truy cập / Access token", subscribe = true } = {}) {
  const token = readToken() || (await askToken(askMessage));
  const conn = new HubConnection(token, { subscribe }).start();
  const banner = document.querySelector("[data-connection]");
  if (banner) {
    const show = () => {
      banner.dataset.connection = conn.status;
      banner.textContent = t(`conn.${conn.status}`);
    };
    conn.addEventListener("status", show);
    window.addEventListener("langchange", show);
    show();
  }
  return conn;
}
