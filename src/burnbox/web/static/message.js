// One message: its code and link first, then HTML (sandboxed), text, headers, files.
import { api, inboxPath } from "./api.js";

const $ = (id) => document.getElementById(id);
// The tallest the frame grows: a mail taller than this (a hostile one could be endless)
// scrolls inside it instead of growing the page without bound.
const MAX_FRAME = 30000;
const LINK = /https?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

export function formatWhen(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export class MessageView {
  constructor({ onDeleted, notify, copy }) {
    this.onDeleted = onDeleted;
    this.notify = notify;
    this.copy = copy;
    this.current = null;
    for (const tab of ["html", "text", "headers"]) {
      $(`tab-${tab}`).addEventListener("click", () => this.show(tab));
    }
    $("remote-toggle").addEventListener("change", () => this.loadFrame());
    $("v-delete").addEventListener("click", () => this.remove());
    $("back").addEventListener("click", () => this.close());
    // Loaded (its images too, after "show remote content"): as tall as the mail. Again
    // when the window's width changes the mail's layout.
    $("v-html").addEventListener("load", () => this.fit());
    let pending = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => this.fit());
    });
  }

  // The frame as tall as the mail in it, so the page scrolls once. Its document keeps our
  // origin (sandbox allow-same-origin, never allow-scripts), so it can be measured here.
  // Measured at height 0 so the mail's own height is read, not the frame's (a mail sized
  // in percent of its window would otherwise only ever grow); within one task, so nothing
  // is painted in between.
  fit() {
    const frame = $("v-html");
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement || frame.hidden) return;
    frame.style.height = "0px";
    const borders = frame.offsetHeight; // all that is left of a box-sized frame at height 0
    const root = doc.scrollingElement || doc.documentElement;
    const mail = Math.max(root.scrollHeight, doc.documentElement.scrollHeight);
    frame.style.height = `${Math.min(Math.max(mail, 120), MAX_FRAME) + borders}px`;
    frame.dataset.fitted = String(frame.src.includes("/html"));
  }

  async open(address, id) {
    const view = await api("GET", `${inboxPath(address)}/messages/${id}`);
    this.current = { address, id, view };
    const { summary } = view;
    $("v-subject").textContent = summary.subject || "(no subject)";
    $("v-from").textContent = summary.from || "(no sender)";
    $("v-date").textContent = new Date(summary.received_at).toLocaleString();
    $("v-date").dateTime = summary.received_at;
    this.showSender(summary);
    this.renderExtract(view);
    $("v-text").replaceChildren(...linked(view.text || "(no text part)"));
    $("v-headers").replaceChildren(...view.headers.map(([name, value]) =>
      el("tr", {}, el("th", { scope: "row", textContent: name }), el("td", { textContent: value }))));
    $("v-attachments").replaceChildren(...view.attachments.filter((a) => !a.inline).map((a) =>
      el("li", {}, el("a", { className: "button clip", href: a.url, download: a.filename,
        textContent: `${a.filename} (${Math.ceil(a.size / 1024)} KB)` }))));
    $("v-raw").href = `${inboxPath(address)}/messages/${id}/raw`;
    $("remote").hidden = !this.hasBlocked(view);
    const styles = view.styles_removed ? ` ${view.styles_removed} unsafe style rule(s) removed.` : "";
    $("remote-count").textContent = `${view.remote_blocked.length} remote item(s) blocked.${styles}`;
    $("remote-toggle").checked = false;
    $("view").hidden = false;
    document.body.classList.add("reading");
    this.show(view.html ? "html" : "text");
    $("v-subject").focus({ preventScroll: true }); // keyboard and screen readers land here
    if (!summary.seen) {
      api("PATCH", `${inboxPath(address)}/messages/${id}`, { seen: true }).catch(() => {});
    }
  }

  // Who really sent it, in words (and colour): burnbox's SPF, DKIM and DMARC checks.
  showSender(summary) {
    const mark = $("v-auth");
    const auth = summary.authentication; // null: not checked (yet: an update follows)
    mark.hidden = !auth;
    if (!auth) return;
    mark.className = `auth ${auth.verdict}`;
    const domain = auth.from_domain;
    mark.textContent = auth.verdict === "verified" ? `✓ Verified: sent by ${domain}`
      : auth.verdict === "failed" ? `✗ Failed: possibly forged${domain ? ` (not sent by ${domain})` : ""}`
      : "? Sender could not be verified";
    mark.title = `SPF ${auth.spf}, DKIM ${auth.dkim}, DMARC ${auth.dmarc}, ARC ${auth.arc}`;
  }

  // A pushed change to a message: if it is the open one, show its checks' results.
  updated(summary) {
    if (this.current && this.current.id === summary.id) this.showSender(summary);
  }

  renderExtract(view) {
    const items = [];
    for (const code of view.codes) {
      items.push(el("div", { className: "item" },
        el("span", { className: "code", textContent: code }),
        el("button", { type: "button", className: "primary", textContent: "Copy code",
          onclick: () => this.copy(code, "Code copied") })));
    }
    for (const link of view.links.slice(0, 1)) {
      items.push(el("div", { className: "item" },
        el("a", { className: "button primary", href: link.url, target: "_blank",
          rel: "noopener noreferrer", textContent: link.text || "Open link" }),
        el("button", { type: "button", textContent: "Copy link",
          onclick: () => this.copy(link.url, "Link copied") })));
    }
    $("v-extract").replaceChildren(...items);
    $("v-extract").hidden = items.length === 0;
  }

  hasBlocked(view) {
    return view.remote_blocked.length > 0 || view.styles_removed > 0;
  }

  show(tab) {
    for (const name of ["html", "text", "headers"]) {
      $(`tab-${name}`).setAttribute("aria-selected", String(name === tab));
    }
    $("v-html").hidden = tab !== "html";
    $("v-text").hidden = tab !== "text";
    $("v-headers").hidden = tab !== "headers";
    $("remote").hidden = tab !== "html" || !this.current || !this.hasBlocked(this.current.view);
    if (tab === "html") this.loadFrame();
  }

  loadFrame() {
    if (!this.current) return;
    const remote = $("remote-toggle").checked ? "allow" : "block";
    const { address, id } = this.current;
    const frame = $("v-html");
    frame.dataset.fitted = "false";
    frame.src = `${inboxPath(address)}/messages/${id}/html?remote=${remote}`;
  }

  async remove() {
    if (!this.current) return;
    const { address, id } = this.current;
    await api("DELETE", `${inboxPath(address)}/messages/${id}`);
    this.close();
    this.onDeleted(id);
    this.notify("Message deleted");
  }

  close() {
    const opened = this.current && this.current.id;
    this.current = null;
    $("view").hidden = true;
    $("v-html").src = "about:blank";
    document.body.classList.remove("reading");
    const item = opened && document.querySelector(`#messages button[data-id="${opened}"]`);
    if (item) item.focus({ preventScroll: true }); // back where the reader came from
  }
}

// Plain text as nodes, its http(s) URLs as links (opened in a new tab, no referrer).
function linked(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const url = match[0].replace(TRAILING, "");
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow",
      textContent: url }));
    last = match.index + url.length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
