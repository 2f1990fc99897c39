// The REST side of API.md and the token lifecycle: login, rotation before expiry, logout.
// Tokens live in sessionStorage: a reload keeps the session, a new tab or browser does not.
//
// A duplicated tab starts with a copy of sessionStorage, so two pages can hold one session.
// The server treats a retired refresh token as theft and ends the session, so the pages of one
// session rotate one at a time (a Web Lock per session) and hand each rotation to the others:
// the newest pair is written to localStorage under the session id while the lock is held, and
// announced on a BroadcastChannel. A page that gets the lock after another rotated adopts
// that pair instead of spending its retired token.

const STORE_KEY = "chat-es.session";
const ROTATED_KEY = "chat-es.rotated.";
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("chat-es.session") : null;

/** An error answer of the contract: {"detail", "code"[, "fields"]} with its HTTP status. */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(ApiError.describe(status, body, retryAfter));
    this.status = status;
    this.code = body?.code ?? "http_" + status;
    this.fields = body?.fields ?? null;
  }

  static describe(status, body, retryAfter) {
    let text = body?.detail ?? `The server answered ${status}.`;
    if (body?.fields) {
      // One line per field (the page shows these with white-space: pre-line).
      for (const [name, msgs] of Object.entries(body.fields)) text += `\n${name}: ${msgs.join(" ")}`;
    }
    if (retryAfter) text += ` (try again in ${retryAfter} s)`;
    return text;
  }
}

/** Decodes a JWT's payload (no verification: the server does that; we only need times). */
export function jwtPayload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return {};
  }
}

/**
 * One JSON request; returns the parsed body (or, with `raw`, the Response itself, unread) or
 * throws ApiError (status 0 when offline).
 */
export async function request(method, path, { body, token, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached.", code: "offline" });
  }
  if (raw && response.ok) return response;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

/**
 * The file name a `Content-Disposition: attachment` header gives: RFC 8187's `filename*`
 * (UTF-8, percent-encoded) when present, else the plain `filename`; null when there is none.
 * Path separators and control characters are replaced, so it is only ever a name.
 */
export function attachmentName(header) {
  if (!header) return null;
  let name = null;
  const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (extended && /^utf-8$/i.test(extended[1].trim())) {
    try { name = decodeURIComponent(extended[2].trim()); } catch { name = null; }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2];
  }
  name = name?.replace(/[\u0000-\u001f\u007f/\\]/g, "_").trim();
  return name || null;
}

/**
 * The logged-in user's tokens. Fires "tokens" after every rotation (the socket reconnects
 * with the new access token) and "ended" when the session is gone (logout, expiry, reuse,
 * account deletion).
 */
export class Session extends EventTarget {
  constructor() {
    super();
    this.user = null;
    this.access = null;
    this.refreshToken = null;
    this.skewMs = 0; // server clock minus ours, from the token's iat, so expiry is judged on our clock
    this.refreshing = null;
    this.timer = null;
    this.refreshCount = 0;
    this.ending = false; // a logout or account deletion of ours is under way: it ends the session itself
    channel?.addEventListener("message", ({ data }) => this.adopt(data));
  }

  /** The session id (`sid`) the tokens belong to. */
  get sid() { return jwtPayload(this.refreshToken ?? "").sid ?? null; }

  /** Takes over a rotation another page of this session made from the pair we hold. */
  adopt(message) {
    if (!this.active || !message || message.sid !== this.sid) return false;
    if (message.ended) {
      // While our own logout or deletion runs, that ends the session here when it answers.
      if (!this.ending) {
        this.end(message.deleted ? "Your account was deleted in another tab." : "You logged out in another tab.",
          { announce: false });
      }
      return true;
    }
    if (message.previous !== this.refreshToken || !message.refresh) return false;
    this.store(message.access, message.refresh);
    this.refreshCount += 1;
    this.dispatchEvent(new Event("tokens"));
    return true;
  }

  /** Runs `body` holding this session's rotation lock (or directly where Web Locks are missing). */
  async exclusively(body) {
    const sid = this.sid;
    if (!sid || !navigator.locks) return body();
    return navigator.locks.request("chat-es.rotate." + sid, body);
  }

  get active() { return this.refreshToken !== null; }

  /** Restores a session kept across a reload; false when there is none. */
  restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
      if (!saved?.refresh || !saved?.user) return false;
      this.user = saved.user;
      this.access = saved.access;
      this.refreshToken = saved.refresh;
      this.skewMs = saved.skewMs ?? 0;
      this.schedule();
      return true;
    } catch {
      return false;
    }
  }

  async register(username, password) {
    await request("POST", "/api/register/", { body: { username, password } });
    await this.login(username, password);
  }

  async login(username, password) {
    const data = await request("POST", "/api/login/", { body: { username, password } });
    this.user = data.user;
    this.store(data.access, data.refresh);
  }

  /** Rotates the tokens; one rotation at a time, since re-using a retired refresh token ends the session. */
  refresh() {
    this.refreshing ??= (async () => {
      try {
        await this.exclusively(async () => {
          const sid = this.sid;
          // Another page of this session may have rotated while we waited for the lock.
          if (this.adopt(readJSON(localStorage, ROTATED_KEY + sid))) return;
          const previous = this.refreshToken;
          const data = await request("POST", "/api/token/refresh/", { body: { refresh: previous } });
          const rotated = { sid, previous, access: data.access, refresh: data.refresh };
          try { localStorage.setItem(ROTATED_KEY + sid, JSON.stringify(rotated)); } catch { /* storage full or off */ }
          channel?.postMessage(rotated);
          this.store(data.access, data.refresh);
          this.refreshCount += 1;
          this.dispatchEvent(new Event("tokens"));
        });
      } catch (error) {
        if (error.status === 401) this.end("Your session has ended; please log in again.");
        throw error;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * An authenticated call; an access token refused as expired is refreshed once and retried.
   * With `raw`, the Response of a success is returned unread (for a download).
   */
  async call(method, path, body, { raw = false } = {}) {
    if (this.refreshing) await this.refreshing.catch(() => {});
    if (this.accessExpiresIn() < 2000) await this.refresh();
    try {
      return await request(method, path, { body, token: this.access, raw });
    } catch (error) {
      if (error.status !== 401 || error.code !== "token_not_valid" || !this.active) throw error;
      await this.refresh();
      return request(method, path, { body, token: this.access, raw });
    }
  }

  async logout() {
    this.ending = true;
    try {
      if (this.accessExpiresIn() < 2000) await this.refresh();
      await request("POST", "/api/logout/", { body: { refresh: this.refreshToken }, token: this.access });
    } finally {
      this.ending = false;
      this.end(null);
    }
  }

  /** Everything the server holds about me, as a Blob and the file name the server gives it. */
  async exportData() {
    const response = await this.call("GET", "/api/account/export/", undefined, { raw: true });
    const blob = await response.blob();
    const name = attachmentName(response.headers.get("Content-Disposition"));
    return { blob, filename: name ?? `chat-es-export-${this.user?.username ?? "me"}.json` };
  }

  /**
   * Deletes (erases) my account; the password is asked again. On success every session of the
   * account is over, this one included: it ends here with `reason`. On an error (403
   * wrong_password, 429, ...) nothing happened and the session goes on.
   */
  async deleteAccount(password, reason = null) {
    this.ending = true;
    try {
      await this.call("POST", "/api/account/delete/", { password });
    } finally {
      this.ending = false;
    }
    this.end(reason, { deleted: true });
  }

  /** Milliseconds until the access token expires, on our clock. */
  accessExpiresIn() {
    const { exp } = jwtPayload(this.access ?? "");
    return exp ? exp * 1000 - this.skewMs - Date.now() : 0;
  }

  store(access, refresh) {
    const { iat } = jwtPayload(access);
    if (iat) this.skewMs = iat * 1000 - Date.now();
    this.access = access;
    this.refreshToken = refresh;
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ user: this.user, access, refresh, skewMs: this.skewMs }));
    this.schedule();
  }

  /** Refreshes a little before expiry: a quarter of the lifetime early, at most a minute. */
  schedule() {
    clearTimeout(this.timer);
    const { iat, exp } = jwtPayload(this.access ?? "");
    const lifetime = iat && exp ? (exp - iat) * 1000 : 300_000;
    const margin = Math.min(60_000, lifetime / 4);
    const wait = Math.max(0, this.accessExpiresIn() - margin);
    this.timer = setTimeout(() => {
      // Offline or a server error: try again soon; a 401 has ended the session already.
      this.refresh().catch(() => { if (this.active) this.timer = setTimeout(() => this.schedule(), 5000); });
    }, wait);
  }

  /** Forgets the session here (once; later calls do nothing) and tells the other pages of it. */
  end(reason, { announce = true, deleted = false } = {}) {
    if (!this.active) return;
    clearTimeout(this.timer);
    const sid = this.sid;
    if (sid) {
      try { localStorage.removeItem(ROTATED_KEY + sid); } catch { /* storage off */ }
      if (announce) channel?.postMessage({ sid, ended: true, deleted });
    }
    this.user = null;
    this.access = null;
    this.refreshToken = null;
    sessionStorage.removeItem(STORE_KEY);
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }
}

function readJSON(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}
