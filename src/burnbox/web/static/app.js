// burnbox: the temp-mail page. Vanilla modules, no build step, nothing from other hosts.
import { api, ApiError, inboxPath } from "./api.js";
import { formatWhen, MessageView } from "./message.js";

const STORE_KEY = "burnbox.inboxes"; // [{address, expires_at}]; tokens stay in HttpOnly cookies
const CURRENT_KEY = "burnbox.current";
const $ = (id) => document.getElementById(id);

const state = {
  inboxes: JSON.parse(localStorage.getItem(STORE_KEY) || "[]"),
  current: null,
  expiresAt: null,
  expired: false,
  messages: new Map(), // id -> summary
  loaded: false, // the current inbox's list has been fetched once ("empty" means it)
  source: null,
  retry: 1000,
};

// ---- small helpers -------------------------------------------------------

let toastTimer = 0;
function notify(text, isError = false) {
  const toast = $("toast");
  toast.textContent = text;
  toast.classList.toggle("error", isError);
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, isError ? 6000 : 2500);
}

async function copy(text, done = "Copied") {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(area);
    area.select();
    document.execCommand("copy"); // plain-http pages have no Clipboard API
    area.remove();
  }
  notify(done);
}

function explain(error) {
  if (!(error instanceof ApiError)) return "Something went wrong.";
  switch (error.code) {
    case "unreachable": return "The server cannot be reached. Retrying…";
    case "address_taken": return "That address is already taken. Try another name.";
    case "rate_limited": return `Too many new addresses. Try again in ${error.retryAfter || 60} s.`;
    case "invalid_address": return "That name cannot be used. Use letters, digits, dots and dashes.";
    case "not_found": return "This inbox no longer exists.";
    default: return error.message;
  }
}

function save() {
  localStorage.setItem(STORE_KEY, JSON.stringify(state.inboxes));
  if (state.current) localStorage.setItem(CURRENT_KEY, state.current);
}

// ---- inboxes -------------------------------------------------------------

function renderSwitcher() {
  $("switcher").replaceChildren(...state.inboxes.map(({ address }) =>
    Object.assign(document.createElement("option"), {
      value: address, textContent: address, selected: address === state.current })));
}

// `created` runs once the address is ours, before its mail loads: a form that asked for it
// closes then, so that a click meanwhile opens it again rather than closing it.
async function createInbox(localPart, domain, created = () => {}) {
  const body = { cookie: true };
  if (localPart) body.local_part = localPart;
  if (domain) body.domain = domain;
  try {
    const inbox = await api("POST", "/api/inboxes", body);
    state.inboxes = [{ address: inbox.address, expires_at: inbox.expires_at },
      ...state.inboxes.filter((known) => known.address !== inbox.address)];
    created();
    await selectInbox(inbox.address);
    return true;
  } catch (error) {
    notify(explain(error), true);
    return false;
  }
}

async function selectInbox(address) {
  closeStream();
  messageView.close();
  state.current = address;
  state.expired = false;
  state.messages.clear();
  state.loaded = false;
  save();
  renderSwitcher();
  $("address").textContent = address;
  $("qr").src = `/api/qr/${encodeURIComponent(address)}`;
  setControls(true);
  renderList();
  try {
    const info = await api("GET", inboxPath(address));
    state.expiresAt = deadline(info);
    openStream(); // the list is loaded once the stream is open: nothing falls in between
  } catch (error) {
    if (error.status === 404) markExpired();
    else { notify(explain(error), true); scheduleReconnect(); }
  }
  tick();
}

function markExpired() {
  if (state.expired) return; // one notice, whichever request found out first
  state.expired = true;
  closeStream();
  state.messages.clear();
  renderList();
  setControls(false);
  $("countdown").textContent = "expired";
  notify("This inbox has expired or was burned. Make a new address.", true);
}

function setControls(enabled) {
  for (const id of ["extend", "burn", "copy-address"]) $(id).disabled = !enabled;
}

// ---- messages --------------------------------------------------------------

async function loadMessages() {
  const address = state.current;
  const page = await api("GET", `${inboxPath(address)}/messages?limit=100`);
  if (address !== state.current) return;
  const newest = page.messages.length ? page.messages[0].id : "";
  const pushed = [...state.messages.values()].filter((m) => m.id > newest);
  // Mail a catch-up finds after the list was shown came while the stream was down: news.
  const fresh = state.loaded ? page.messages.filter((m) => !state.messages.has(m.id)) : [];
  state.messages.clear();
  for (const summary of [...page.messages, ...pushed]) state.messages.set(summary.id, summary);
  state.loaded = true;
  renderList();
  if (fresh.length) announce(fresh[0]);
}

function listItem(summary) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = summary.id;
  button.className = summary.seen ? "" : "unread";
  const from = Object.assign(document.createElement("span"), {
    className: "from", textContent: summary.from || "(no sender)" });
  const when = Object.assign(document.createElement("time"), {
    className: "when", textContent: formatWhen(summary.received_at), dateTime: summary.received_at });
  const subject = Object.assign(document.createElement("span"), {
    className: `subject${summary.attachments ? " clip" : ""}`,
    textContent: summary.subject || "(no subject)" });
  const snippet = Object.assign(document.createElement("span"), {
    className: "snippet", textContent: summary.snippet });
  // Its name is what it shows (WCAG 2.5.3), with "Unread" said, not only coloured.
  const unread = Object.assign(document.createElement("span"), {
    className: "visually-hidden", textContent: summary.seen ? "" : "Unread: " });
  button.append(unread, from, when, subject, snippet);
  button.addEventListener("click", () => openMessage(summary.id));
  item.append(button);
  return item;
}

function renderList() {
  const sorted = [...state.messages.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  $("messages").replaceChildren(...sorted.map(listItem));
  updateCounts();
}

function updateCounts() {
  const total = state.messages.size;
  const unread = [...state.messages.values()].filter((m) => !m.seen).length;
  $("empty").hidden = total > 0 || !state.loaded;
  $("count").textContent = total ? `(${total})` : "";
  document.title = unread ? `(${unread}) burnbox` : "burnbox";
  const open = messageView.current && messageView.current.id;
  for (const button of $("messages").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.id === open));
  }
}

function upsert(summary) {
  const known = state.messages.has(summary.id);
  state.messages.set(summary.id, summary);
  const fresh = listItem(summary);
  const old = $("messages").querySelector(`button[data-id="${summary.id}"]`);
  if (known && old) old.parentElement.replaceWith(fresh);
  else $("messages").prepend(fresh); // newest first; scroll anchoring keeps the view still
  updateCounts();
}

function forget(id) {
  state.messages.delete(id);
  const old = $("messages").querySelector(`button[data-id="${id}"]`);
  if (old) old.parentElement.remove();
  updateCounts();
}

async function openMessage(id) {
  try {
    await messageView.open(state.current, id);
    const summary = state.messages.get(id);
    if (summary && !summary.seen) upsert({ ...summary, seen: true });
    updateCounts();
  } catch (error) {
    notify(explain(error), true);
  }
}

// ---- live push -----------------------------------------------------------

function openStream() {
  closeStream();
  const source = new EventSource(`${inboxPath(state.current)}/events`);
  state.source = source;
  source.addEventListener("open", () => {
    if (state.retry > 1000) notify("Reconnected.");
    state.retry = 1000;
    loadMessages().catch(failed); // catch up, then live
  });
  source.addEventListener("message", (event) => {
    const summary = JSON.parse(event.data);
    if (!state.messages.has(summary.id)) announce(summary);
    upsert(summary);
  });
  source.addEventListener("seen", (event) => upsert(JSON.parse(event.data)));
  source.addEventListener("updated", (event) => {
    const summary = JSON.parse(event.data);
    upsert(summary);
    messageView.updated(summary);
  });
  source.addEventListener("deleted", (event) => forget(JSON.parse(event.data).id));
  source.addEventListener("expired", (event) => {
    const { id } = JSON.parse(event.data);
    if (id) forget(id);
    else markExpired();
  });
  source.addEventListener("error", () => {
    if (state.expired || state.source !== source) return;
    if (source.readyState === EventSource.CLOSED) scheduleReconnect();
    else notify("Connection lost. Reconnecting…", true); // EventSource retries by itself
  });
}

// New mail, said once to screen readers (a polite live region, apart from the toasts).
function announce(summary) {
  $("announcer").textContent =
    `New message from ${summary.from || "an unknown sender"}: ${summary.subject || "(no subject)"}`;
}

function failed(error) {
  if (error.status === 404) markExpired();
  else notify(explain(error), true);
}

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
}

function scheduleReconnect() {
  closeStream();
  const address = state.current;
  setTimeout(async () => {
    if (state.current !== address || state.expired) return;
    try {
      await api("GET", inboxPath(address));
      openStream(); // its open handler reloads the list: whatever arrived meanwhile
    } catch (error) {
      if (error.status === 404) { markExpired(); return; }
      notify(explain(error), true);
      state.retry = Math.min(state.retry * 2, 30000);
      scheduleReconnect();
    }
  }, state.retry);
}

// ---- lifetime ------------------------------------------------------------

// When the inbox expires on this browser's clock: the server says how many seconds are
// left, which stays right when the two clocks disagree (expires_at would not).
function deadline(info) {
  return Date.now() + info.expires_in * 1000;
}

function tick() {
  if (state.expired || !state.expiresAt) return;
  const left = Math.max(0, Math.floor((state.expiresAt - Date.now()) / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  $("countdown").textContent =
    `${pad(Math.floor(left / 3600))}:${pad(Math.floor(left / 60) % 60)}:${pad(left % 60)}`;
  $("countdown").dateTime = `PT${left}S`;
  if (left === 0) markExpired();
}

// ---- wiring --------------------------------------------------------------

const messageView = new MessageView({ onDeleted: forget, notify, copy });

$("copy-address").addEventListener("click", () => copy(state.current, "Address copied"));
$("show-qr").addEventListener("click", () => {
  const qr = $("qr");
  qr.hidden = !qr.hidden;
  $("show-qr").setAttribute("aria-expanded", String(!qr.hidden));
});
$("new-inbox").addEventListener("click", () => createInbox());
$("switcher").addEventListener("change", (event) => selectInbox(event.target.value));
$("extend").addEventListener("click", async () => {
  try {
    const info = await api("POST", `${inboxPath(state.current)}/extend`);
    state.expiresAt = deadline(info);
    tick();
    notify("Extended.");
  } catch (error) { notify(explain(error), true); }
});
$("burn").addEventListener("click", async () => {
  const address = state.current;
  try { await api("DELETE", inboxPath(address)); } catch (error) {
    if (error.status !== 404) { notify(explain(error), true); return; }
  }
  state.inboxes = state.inboxes.filter((known) => known.address !== address);
  notify("Burned: the inbox and its mail are gone.");
  if (state.inboxes.length) await selectInbox(state.inboxes[0].address);
  else await createInbox();
});
function showChooser(shown) {
  $("choose").hidden = !shown;
  $("choose-toggle").setAttribute("aria-expanded", String(shown));
}
$("choose-toggle").addEventListener("click", () => {
  showChooser($("choose").hidden);
  if (!$("choose").hidden) $("choose-local").focus();
});
$("choose").addEventListener("submit", async (event) => {
  event.preventDefault();
  await createInbox($("choose-local").value.trim(), $("choose-domain").value, () => {
    showChooser(false);
    $("choose-local").value = "";
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && messageView.current) messageView.close();
});

async function start() {
  setInterval(tick, 1000);
  try {
    const { domains } = await api("GET", "/api/domains");
    $("choose-domain").replaceChildren(...domains.map((domain) =>
      Object.assign(document.createElement("option"), { value: domain, textContent: domain })));
  } catch (error) { notify(explain(error), true); }
  const remembered = localStorage.getItem(CURRENT_KEY);
  const known = state.inboxes.find((inbox) => inbox.address === remembered) || state.inboxes[0];
  if (known) await selectInbox(known.address);
  else await createInbox();
}

start();
