// The web chat page: sign up / log in, who is online, conversations, live messages, and the
// account's own actions (download my data, delete account).
// Only the contract of API.md is used; every user-supplied text goes in via textContent.

import { ApiError, Session } from "/web/api.js";
import { ChatSocket } from "/web/socket.js";

const $ = (id) => document.getElementById(id);
const DELETED = "[deleted]"; // the name a deleted (erased) account reads as to everyone else
const session = new Session();
const socket = new ChatSocket(() => session.access, () => state.lastSeen, () => session.refresh());

const state = {
  lastSeen: 0, // the highest message id shown: sync asks for everything after it
  conversations: new Map(), // conversation_id -> summary from /api/conversations/ (+ unread)
  messages: new Map(), // conversation_id -> Map(id -> message)
  pending: new Map(), // client_id -> { text, receiver, conversation, failed, sentAt }
  current: null, // { conversation_id, peer }
  online: [],
  pollTimer: null,
  endedMeanwhile: false, // the socket said "session ended" while our own logout/deletion ran
};

// ---------- small helpers ----------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/** A line under the header: an error by default, or `"info"` for good news. */
function notice(text, kind = "error") {
  const box = $("notice");
  box.textContent = text ?? "";
  box.dataset.kind = kind;
  box.hidden = !text;
  clearTimeout(notice.timer);
  if (text) notice.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

function errorText(error) {
  return error instanceof ApiError ? error.message : String(error?.message ?? error);
}

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function timeOf(stamp) {
  const date = new Date(stamp);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function peerOf(summary) {
  return summary.participants.find((p) => p.id !== session.user.id) ?? summary.participants[0];
}

/** A message whose sender deleted their account: `"message": null, "erased": true`. */
function isErased(message) {
  return message.erased === true || message.message === null;
}

// ---------- views ----------

function showAuth(message) {
  $("chat-view").hidden = true;
  $("account").hidden = true;
  $("auth-view").hidden = false;
  const error = $("auth-error");
  error.textContent = message ?? "";
  error.hidden = !message;
  $("auth-username").focus();
}

async function showChat() {
  $("auth-view").hidden = true;
  $("auth-error").hidden = true;
  $("chat-view").hidden = false;
  $("account").hidden = false;
  $("me-name").textContent = session.user.username;
  await Promise.all([loadConversations(), loadOnline(), loadSuggestions()]);
  for (const summary of state.conversations.values()) {
    state.lastSeen = Math.max(state.lastSeen, summary.last_message?.id ?? 0);
  }
  socket.start();
  clearInterval(state.pollTimer);
  // Presence frames reach only friends; everyone else shows up through this poll.
  state.pollTimer = setInterval(() => { loadOnline(); loadSuggestions(); }, 10_000);
  const remembered = sessionStorage.getItem("chat-es.open");
  const summary = remembered && state.conversations.get(remembered);
  if (summary) await openConversation(summary.conversation_id, peerOf(summary).username);
}

function resetState() {
  clearInterval(state.pollTimer);
  state.lastSeen = 0;
  state.conversations.clear();
  state.messages.clear();
  state.pending.clear();
  state.current = null;
  sessionStorage.removeItem("chat-es.open");
  $("message-list").replaceChildren();
  $("conversation-list").replaceChildren();
  $("online-list").replaceChildren();
  $("suggestion-list").replaceChildren();
  $("composer").hidden = true;
  $("peer-gone").hidden = true;
  $("message-list").hidden = true;
  $("empty-chat").hidden = false;
  $("chat-peer").textContent = "No chat open";
  document.body.classList.remove("show-chat");
}

// ---------- people ----------

function personItem(name, detail, testid, onClick, extra = {}) {
  const gone = name === DELETED;
  const button = el("button", { type: "button", class: gone ? "person deleted" : "person", onclick: onClick },
    el("span", { class: "avatar", "aria-hidden": "true" }, gone ? "?" : name.slice(0, 1).toUpperCase()),
    el("span", { class: "name" }, name),
    el("span", { class: "detail" }, detail));
  return el("li", { "data-testid": testid, dataset: { username: name, ...extra } }, button);
}

/** True while no background request should start: signed out, or our logout/deletion is under way. */
function quiet() {
  return !session.active || session.ending;
}

async function loadOnline() {
  if (quiet()) return;
  try {
    const page = await session.call("GET", "/api/online-users/?limit=200");
    state.online = page.results;
    // A deleted account cannot be chatted with: it is left out wherever it could be picked.
    const others = page.results.filter((u) => u.id !== session.user.id && u.username !== DELETED);
    // The others, like the list: the server's count includes me (my session is open).
    $("online-count").textContent = String(Math.max(0, page.count - 1));
    const items = others.map((u) => personItem(u.username, u.connected ? "live" : "online", "online-user",
      () => startChat(u.username), { connected: String(u.connected) }));
    if (!items.length) items.push(el("li", { class: "muted" }, "Nobody else is online yet."));
    $("online-list").replaceChildren(...items);
  } catch (error) {
    if (session.active) notice(errorText(error));
  }
}

async function loadSuggestions() {
  if (quiet()) return;
  try {
    const data = await session.call("GET", `/api/suggested-friends/${session.user.id}`);
    const items = data.results.filter((s) => s.username !== DELETED).map((s) => personItem(s.username,
      s.mutual_friends ? `${s.mutual_friends} mutual` : "active lately", "suggestion", () => startChat(s.username)));
    if (!items.length) items.push(el("li", { class: "muted" }, "No suggestions yet."));
    $("suggestion-list").replaceChildren(...items);
  } catch (error) {
    if (session.active) notice(errorText(error));
  }
}

async function loadConversations() {
  const list = await session.call("GET", "/api/conversations/");
  for (const summary of list) {
    const known = state.conversations.get(summary.conversation_id);
    state.conversations.set(summary.conversation_id, { ...summary, unread: known?.unread ?? 0 });
  }
  renderConversations();
}

function renderConversations() {
  const sorted = [...state.conversations.values()].sort((a, b) => (b.last_message?.id ?? 0) - (a.last_message?.id ?? 0));
  const items = sorted.map((c) => {
    const peer = peerOf(c).username;
    const lastText = c.last_message && (isErased(c.last_message) ? "message deleted" : c.last_message.message);
    const last = c.last_message ? `${c.last_message.sender === session.user.username ? "you: " : ""}${lastText}` : "no messages yet";
    const item = personItem(peer, c.unread ? `${c.unread} new · ${last}` : last, "conversation",
      () => openConversation(c.conversation_id, peer), { conversation: c.conversation_id });
    if (state.current?.conversation_id === c.conversation_id) item.firstChild.setAttribute("aria-current", "true");
    if (c.unread) item.classList.add("unread");
    return item;
  });
  if (!items.length) items.push(el("li", { class: "muted" }, "No conversations yet."));
  $("conversation-list").replaceChildren(...items);
}

async function startChat(username) {
  try {
    const started = await session.call("POST", "/api/chat/start/", { receiver_id: username });
    const peer = started.participants.find((p) => p.id !== session.user.id) ?? started.participants[1];
    if (!state.conversations.has(started.conversation_id)) {
      state.conversations.set(started.conversation_id, { conversation_id: started.conversation_id,
        participants: started.participants, last_message: null, message_count: 0, unread: 0 });
    }
    await openConversation(started.conversation_id, peer.username);
    loadSuggestions();
  } catch (error) {
    notice(errorText(error));
  }
}

// ---------- messages ----------

async function openConversation(conversationId, peer) {
  state.current = { conversation_id: conversationId, peer };
  sessionStorage.setItem("chat-es.open", conversationId);
  $("chat-peer").textContent = peer;
  const gone = peer === DELETED;
  $("composer").hidden = gone;
  $("peer-gone").hidden = !gone;
  $("message-list").hidden = false;
  $("empty-chat").hidden = true;
  document.body.classList.add("show-chat");
  const summary = state.conversations.get(conversationId);
  if (summary) summary.unread = 0;
  renderConversations();
  renderMessages();
  try {
    await loadHistory(conversationId);
  } catch (error) {
    notice(errorText(error));
  }
  if (state.current?.conversation_id === conversationId) renderMessages();
  if (!gone) $("message-input").focus();
}

/** Reads the whole history page by page (the server caps a page at 500). */
async function loadHistory(conversationId) {
  let after = 0;
  for (let page = 0; page < 40; page += 1) {
    const data = await session.call("GET", `/api/chat/${encodeURIComponent(conversationId)}/messages/?limit=500&after=${after}`);
    for (const message of data.results) remember(message);
    if (data.next_after === null) break;
    after = data.next_after;
  }
}

/** Keeps a stored message (deduplicated by id); true when it was new. */
function remember(message) {
  let list = state.messages.get(message.conversation_id);
  if (!list) state.messages.set(message.conversation_id, (list = new Map()));
  state.lastSeen = Math.max(state.lastSeen, message.id);
  if (list.has(message.id)) return false;
  list.set(message.id, message);
  return true;
}

function messageItem(message, pending) {
  const mine = message.sender === session.user.username;
  const erased = !pending && isErased(message);
  const stateName = pending ? (pending.failed ? "failed" : "pending") : "sent";
  const meta = pending ? (pending.failed ? `not sent: ${pending.failed}` : "sending…") : timeOf(message.timestamp);
  const text = erased
    ? el("span", { class: "text erased", "data-testid": "erased-message" }, "message deleted")
    : el("span", { class: "text" }, message.message);
  return el("li", {
    class: `bubble ${mine ? "mine" : "theirs"} ${stateName}${erased ? " erased" : ""}`, "data-testid": "message",
    dataset: { id: String(message.id ?? ""), sender: message.sender, state: stateName, erased: String(erased) },
  }, text, el("span", { class: "meta" }, meta));
}

function renderMessages() {
  const list = $("message-list");
  if (!state.current) return list.replaceChildren();
  const id = state.current.conversation_id;
  const stored = [...(state.messages.get(id)?.values() ?? [])].sort((a, b) => a.id - b.id);
  const items = stored.map((m) => messageItem(m, null));
  for (const p of state.pending.values()) {
    if (p.receiver === state.current.peer) items.push(messageItem({ message: p.text, sender: session.user.username }, p));
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.replaceChildren(...items);
  if (atBottom || items.length < 30) list.scrollTop = list.scrollHeight;
}

function updateSummary(message) {
  const summary = state.conversations.get(message.conversation_id);
  if (!summary) return loadConversations().catch(() => {}); // a chat someone else started
  if (!summary.last_message || summary.last_message.id <= message.id) summary.last_message = message;
  renderConversations();
}

function onMessage(message) {
  const isNew = remember(message);
  if (!isNew) return;
  const visible = state.current?.conversation_id === message.conversation_id;
  const summary = state.conversations.get(message.conversation_id);
  if (!visible && summary && message.sender !== session.user.username) summary.unread += 1;
  updateSummary(message);
  if (visible) renderMessages();
}

function onAck(frame) {
  const pending = state.pending.get(frame.client_id);
  if (!pending) return;
  state.pending.delete(frame.client_id);
  onMessage({ id: frame.id, conversation_id: frame.conversation_id, sender: session.user.username,
    receiver: pending.receiver, message: pending.text, erased: false, timestamp: frame.timestamp });
  renderMessages();
}

/** Sends over the socket when it is open, else over REST; the client_id makes a retry safe. */
async function deliver(clientId) {
  const p = state.pending.get(clientId);
  if (!p) return;
  p.failed = null;
  p.sentAt = Date.now();
  const frame = { message: p.text, receiver: p.receiver, client_id: clientId };
  if (socket.send(frame)) return;
  try {
    const stored = await session.call("POST", "/api/chat/send/", frame);
    state.pending.delete(clientId);
    onMessage(stored);
    renderMessages();
  } catch (error) {
    if (error.status === 0) return; // offline: the socket's reconnect resends it
    p.failed = errorText(error);
    renderMessages();
  }
}

function send(event) {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value.trim();
  if (!text || !state.current) return;
  const clientId = newClientId();
  state.pending.set(clientId, { text, receiver: state.current.peer, failed: null, sentAt: Date.now() });
  input.value = "";
  renderMessages();
  deliver(clientId);
}

// An ack lost with a dropped socket: resend what is still pending (same client_id, stored once).
function resendPending() {
  for (const [clientId, p] of state.pending) if (!p.failed) deliver(clientId);
}

setInterval(() => {
  for (const [clientId, p] of state.pending) if (!p.failed && Date.now() - p.sentAt > 10_000) deliver(clientId);
}, 5000);

/**
 * A friend deleted their account (their presence frame names "[deleted]"): their name and
 * message texts are gone, so read the conversations again, and the histories of those that
 * now show "[deleted]" (messages already shown would keep their old text otherwise).
 */
async function onErasure() {
  if (quiet()) return;
  loadOnline();
  loadSuggestions();
  const before = new Set([...state.conversations.values()].filter((c) => peerOf(c).username === DELETED).map((c) => c.conversation_id));
  try {
    await loadConversations();
  } catch (error) {
    if (session.active) notice(errorText(error));
    return;
  }
  for (const summary of state.conversations.values()) {
    const id = summary.conversation_id;
    if (before.has(id) || peerOf(summary).username !== DELETED) continue;
    state.messages.delete(id);
    if (state.current?.conversation_id === id) await openConversation(id, DELETED);
  }
}

// ---------- socket frames ----------

socket.addEventListener("frame", ({ detail: frame }) => {
  switch (frame.type) {
    case "message": return onMessage(frame);
    case "message.ack": return onAck(frame);
    case "presence": return frame.user === DELETED ? onErasure() : loadOnline();
    case "error": {
      const p = frame.client_id && state.pending.get(frame.client_id);
      if (p) {
        p.failed = frame.detail;
        renderMessages();
      } else {
        notice(frame.detail);
      }
      return;
    }
    default: return; // pong, sync.done
  }
});

socket.addEventListener("state", ({ detail }) => {
  const status = $("connection-status");
  status.dataset.state = detail;
  status.textContent = { open: "live", connecting: "connecting…", closed: "offline" }[detail];
  document.body.dataset.socketConnects = String(socket.connects);
  if (detail === "open") resendPending();
});

// ---------- session ----------

session.addEventListener("tokens", () => {
  document.body.dataset.tokenRefreshes = String(session.refreshCount);
  socket.reconnect();
});

session.addEventListener("ended", ({ detail }) => {
  socket.stop();
  closeDeleteDialog();
  $("account-menu").open = false;
  resetState();
  showAuth(detail);
});

// The server closed the socket with 4401 "session ended": this session is over everywhere
// (logged out or deleted in another tab or browser, refresh-token reuse, refresh expiry).
// Sign out here instead of reconnecting; our own logout or deletion signs out when it answers.
socket.addEventListener("ended", () => {
  if (session.ending) {
    state.endedMeanwhile = true;
    return;
  }
  session.end("Your session has ended; please log in again.");
});

// ---------- my account: download my data, delete account ----------

/** Saves the export under the name the server gives it, through a blob URL and <a download>. */
async function downloadMyData() {
  $("account-menu").open = false;
  const button = $("export-button");
  button.disabled = true;
  try {
    const { blob, filename } = await session.exportData();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: filename, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000); // the download may still be reading it
    notice(`Your data is downloading as ${filename}.`, "info");
  } catch (error) {
    if (session.active) notice(errorText(error));
  } finally {
    button.disabled = false;
  }
}

function openDeleteDialog() {
  $("account-menu").open = false;
  $("delete-form").reset();
  $("delete-username").value = session.user.username; // for password managers
  $("delete-error").hidden = true;
  $("delete-dialog").showModal();
  $("delete-password").focus();
}

function closeDeleteDialog() {
  const dialog = $("delete-dialog");
  if (dialog.open) dialog.close();
  $("delete-form").reset();
  $("delete-error").hidden = true;
}

function deleteError(text) {
  const error = $("delete-error");
  error.textContent = text;
  error.hidden = false;
}

async function deleteAccount(event) {
  event.preventDefault();
  const password = $("delete-password").value;
  if (!password) return deleteError("Enter your password to confirm.");
  if (!$("delete-confirm").checked) return deleteError("Tick the box to confirm that this cannot be undone.");
  const buttons = [$("delete-submit"), $("delete-cancel")];
  buttons.forEach((b) => { b.disabled = true; });
  $("delete-error").hidden = true;
  state.endedMeanwhile = false;
  try {
    await session.deleteAccount(password); // on success the session ends: "ended" shows the sign-in view
    notice("Your account has been deleted. Your messages now read “message deleted” for everyone.", "info");
  } catch (error) {
    if (state.endedMeanwhile) {
      session.end("Your session has ended; please log in again.");
    } else if (error.status === 403 && error.code === "wrong_password") {
      deleteError("Wrong password: the account was not deleted.");
      $("delete-password").select();
    } else if (session.active) {
      deleteError(errorText(error));
    }
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function authenticate(event, mode) {
  event?.preventDefault();
  const username = $("auth-username").value.trim();
  const password = $("auth-password").value;
  const buttons = [$("login-button"), $("signup-button")];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    if (mode === "signup") await session.register(username, password);
    else await session.login(username, password);
    $("auth-password").value = "";
    await showChat();
  } catch (error) {
    showAuth(errorText(error));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

$("auth-form").addEventListener("submit", (e) => authenticate(e, "login"));
$("signup-button").addEventListener("click", (e) => authenticate(e, "signup"));
$("export-button").addEventListener("click", downloadMyData);
$("delete-button").addEventListener("click", openDeleteDialog);
$("delete-cancel").addEventListener("click", closeDeleteDialog);
$("delete-form").addEventListener("submit", deleteAccount);
$("delete-dialog").addEventListener("close", () => $("delete-form").reset());
$("logout-button").addEventListener("click", async () => {
  $("account-menu").open = false;
  try {
    await session.logout();
  } catch (error) {
    notice(errorText(error));
  }
});
$("start-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("start-input").value.trim();
  if (name) startChat(name).then(() => { $("start-input").value = ""; });
});
$("composer").addEventListener("submit", send);
$("message-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) send(e); // Shift+Enter for a new line
});
$("back-button").addEventListener("click", () => document.body.classList.remove("show-chat"));
// The account menu closes on a click elsewhere and on Escape, as menus do.
document.addEventListener("click", (e) => {
  const menu = $("account-menu");
  if (menu.open && !menu.contains(e.target)) menu.open = false;
});
document.addEventListener("keydown", (e) => {
  const menu = $("account-menu");
  if (e.key === "Escape" && menu.open) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});
window.addEventListener("online", () => socket.reconnect());

if (session.restore()) {
  showChat().catch((error) => { if (session.active) notice(errorText(error)); });
} else {
  showAuth(null);
}
