// The chat WebSocket of API.md: connects with ?token=<access>, asks for what it missed with a
// sync frame on every (re)connect, and reconnects with backoff. Fires "frame" for each JSON
// frame, "state" when the connection opens or drops, and "ended" when the server closed it
// because the session is over (4401 "session ended": logout, refresh-token reuse, refresh
// expiry, account deletion) — then it stays closed: reconnecting could never succeed.

/** Consecutive 4401 refusals (no frame in between) after which the session counts as over. */
const MAX_REFUSALS = 3;

export class ChatSocket extends EventTarget {
  /**
   * @param {() => string|null} token the current access token
   * @param {() => number} lastSeen the highest message id already shown
   * @param {() => Promise<void>} refresh renews the access token after a 4401 "authentication failed"
   */
  constructor(token, lastSeen, refresh) {
    super();
    this.token = token;
    this.lastSeen = lastSeen;
    this.refresh = refresh;
    this.ws = null;
    this.state = "closed";
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = true;
    this.connects = 0;
    this.refusals = 0; // 4401 closes since the last frame received
  }

  get isOpen() { return this.ws?.readyState === WebSocket.OPEN; }

  start() {
    this.stopped = false;
    this.refusals = 0;
    this.open();
  }

  /** Closes for good (logout). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.drop(1000, "bye");
    this.setState("closed");
  }

  /** Reconnects now, e.g. with a freshly rotated access token; sync covers the gap. */
  reconnect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.drop(1000, "new token");
    this.open();
  }

  /** Sends a frame if the socket is open; false otherwise (the caller falls back to REST). */
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  open() {
    const access = this.token();
    if (!access) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/chat/send/?token=${encodeURIComponent(access)}`);
    this.ws = ws;
    this.setState("connecting");
    ws.onopen = () => {
      this.attempt = 0;
      this.connects += 1;
      ws.send(JSON.stringify({ type: "sync", after: this.lastSeen() }));
      this.setState("open");
    };
    ws.onmessage = (event) => {
      this.refusals = 0; // a refused socket is closed before it says anything
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // an old socket we replaced on purpose
      this.ws = null;
      this.setState("closed");
      if (this.stopped) return;
      if (event.code === 4401) {
        // The upgrade succeeds even for a bad token (onopen runs), so count refusals instead.
        this.refusals += 1;
        if (event.reason === "session ended" || this.refusals >= MAX_REFUSALS) {
          // The session is over everywhere: no token of it will work again.
          this.stopped = true;
          clearTimeout(this.retryTimer);
          this.dispatchEvent(new CustomEvent("ended", { detail: event.reason }));
          return;
        }
        // The access token was refused at connect (it expired while we were away): renew it
        // first. A refresh refused with 401 ends the session (Session.end); offline, the
        // session's own refresh timer or the "online" event reconnects later.
        this.refresh().then(() => this.retry(), () => {});
      } else {
        this.retry();
      }
    };
  }

  /** Backoff with jitter: 0.5 s, 1 s, 2 s … capped at 10 s. */
  retry() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const wait = Math.min(10_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  drop(code, reason) {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}
