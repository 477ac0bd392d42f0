// SPDX-License-Identifier: MIT
// Chatto web client: plain ES module, no build step. Message text is only ever put in the page as text
// (textContent); links are made from http(s) URLs found in it, never from markup.

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
};

// ---------------------------------------------------------------- state

const S = {
  me: null,
  users: new Map(),       // id -> user
  rooms: new Map(),       // id -> directory entry {room, joined, unreadCount, mentionCount, ...}
  current: null,          // room id
  timeline: new Map(),    // room id -> {items: [...events], hasOlder, loading}
  thread: null,           // {roomId, rootId}
  presence: new Map(),    // user id -> status
  typing: new Map(),      // room id -> [{userId, threadRootEventId}]
  cursor: null,           // last durable realtime cursor seen
  ws: null,
  wsDelay: 500,
  lastTypingSent: 0,
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function post(path, body, headers = {}) {
  let r;
  try {
    r = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body ?? {}),
    });
  } catch (e) {
    throw new ApiError(0, "unavailable", "cannot reach the server");
  }
  let data = {};
  try { data = await r.json(); } catch (e) { /* empty or not JSON */ }
  if (!r.ok) throw new ApiError(r.status, data.code || "unknown", data.message || r.statusText);
  return data;
}

const api = (method, body, headers) => post("/api/connect/" + method, body, headers);

// ---------------------------------------------------------------- helpers

function userName(id) {
  const u = S.users.get(id);
  return u ? (u.displayName || u.login) : "…";
}

// Control icons as inline SVG (no reliance on an emoji font for buttons); reactions stay emoji.
const ICONS = {
  thread: "M4 5h16v10H9l-5 4z",
  edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
  trash: "M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13M10 11v6M14 11v6",
  close: "M6 6l12 12M18 6L6 18",
  smile: "M12 21a9 9 0 1 1 0-18 9 9 0 0 1 0 18zM8.5 14.5c1.8 2 5.2 2 7 0M9 9.5h.01M15 9.5h.01",
  users: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21c0-4 3-6 7-6s7 2 7 6M16 3.5a4 4 0 0 1 0 7.5M18 15c2.5.5 4 2.5 4 6",
};
function icon(name, size = 16) {
  const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("data-icon", name);
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

// ---------------------------------------------------------------- emoji picker

// Every emoji with its name (unicode-emoji-json, vendored), searchable, with the recently used first.
let EMOJI = null;
async function emojiData() {
  if (!EMOJI) {
    const r = await fetch("/static/vendor/unicode-emoji-json/data-by-group.json");
    // skip what is newer than the emoji fonts people commonly have (Emoji 15.0)
    EMOJI = (await r.json()).map((g) => ({ name: g.name, emojis: g.emojis.filter((e) => Number(e.emoji_version) <= 15) }));
  }
  return EMOJI;
}
const recentEmoji = () => { try { return JSON.parse(localStorage.getItem("chatto-recent-emoji") || "[]"); } catch (e) { return []; } };
function useEmoji(e) {
  localStorage.setItem("chatto-recent-emoji", JSON.stringify([e, ...recentEmoji().filter((x) => x !== e)].slice(0, 24)));
}

function pickEmoji(title) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (e) => { if (done) return; done = true; if (e) useEmoji(e); resolve(e); $("dialog").close(); };
    const search = el("input", { type: "search", id: "emoji-search", placeholder: "Search emoji", "aria-label": "Search emoji" });
    const grid = el("div", { class: "emoji-grid", dataset: { testid: "emoji-grid" } });
    const button = (e, name) => el("button", { type: "button", class: "emoji", title: name, "aria-label": name, text: e, onclick: () => finish(e) });
    const draw = async () => {
      const q = search.value.trim().toLowerCase(), data = await emojiData();
      grid.replaceChildren();
      if (!q && recentEmoji().length) {
        const names = new Map(data.flatMap((g) => g.emojis.map((x) => [x.emoji, x.name])));
        grid.append(el("h4", { text: "Recently used" }), el("div", { class: "emoji-row" }, ...recentEmoji().map((e) => button(e, names.get(e) || e))));
      }
      for (const g of data) {
        const hits = q ? g.emojis.filter((x) => x.name.includes(q) || x.slug.includes(q.replace(/ /g, "_"))) : g.emojis;
        if (hits.length) grid.append(el("h4", { text: g.name }), el("div", { class: "emoji-row" }, ...hits.map((x) => button(x.emoji, x.name))));
      }
      if (!grid.children.length) grid.append(el("p", { class: "muted", text: "No emoji match “" + search.value + "”." }));
    };
    search.addEventListener("input", draw);
    search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); const b = grid.querySelector("button.emoji"); if (b) b.click(); } });
    dialog(title, [search, grid], null);
    $("dialog").addEventListener("close", () => { if (!done) { done = true; resolve(null); } }, { once: true });
    draw();
    search.focus();
  });
}

// Someone's custom status as a small emoji with the text on hover (nothing once it expired).
function statusBadge(id) {
  const u = S.users.get(id), cs = u && u.customStatus;
  if (!cs || (cs.expiresAt && new Date(cs.expiresAt) <= new Date())) return null;
  const until = cs.expiresAt ? " (until " + new Date(cs.expiresAt).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) + ")" : "";
  return el("span", { class: "custom-status", title: cs.text + until, "aria-label": "Status: " + cs.text, text: cs.emoji, dataset: { testid: "custom-status" } });
}

// A user's picture, or their initial on a colour of their own when they have none.
function avatar(id, cls = "avatar") {
  const u = S.users.get(id) || {};
  if (u.avatarUrl) return el("img", { class: cls, src: u.avatarUrl, alt: "", loading: "lazy", dataset: { testid: "avatar" } });
  let h = 0;
  for (const c of String(id || "")) h = (h * 31 + c.charCodeAt(0)) % 360;
  const initial = (u.displayName || u.login || "?").trim().charAt(0).toUpperCase() || "?";
  const span = el("span", { class: cls + " initial", text: initial, "aria-hidden": "true" });
  span.style.background = "hsl(" + h + " 45% 45%)"; // CSSOM, which the page's CSP allows (style attributes it does not)
  return span;
}

async function ensureUsers(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !S.users.has(id));
  await Promise.all(missing.map(async (id) => {
    try {
      const u = (await api("chatto.api.v1.UserService/GetUser", { userId: id })).user;
      S.users.set(id, u);
      if (u.presenceStatus) S.presence.set(id, u.presenceStatus);
    }
    catch (e) { /* deleted or not visible */ }
  }));
}

async function loadAllUsers() {
  let token = "";
  do {
    const page = await api("chatto.api.v1.UserService/ListUsers", { pageSize: 200, pageToken: token });
    for (const u of page.users) {
      S.users.set(u.id, u);
      if (u.presenceStatus) S.presence.set(u.id, u.presenceStatus);
    }
    token = page.nextPageToken;
  } while (token);
}

function roomTitle(entry) {
  const r = entry.room;
  if (!r.isDm) return "#" + r.name;
  const others = (r.participantIds || []).filter((id) => id !== S.me.id);
  return others.length ? others.map(userName).join(", ") : userName(S.me.id);
}

// ---------------------------------------------------------------- Markdown

// Bodies are stored as written and rendered here: markdown-it (third_party/web) with raw HTML off, no images,
// links only to http(s) and mailto, plus @mentions, #room references and <t:UNIX_SECONDS:F> timestamps; then
// DOMPurify with an allow-list of the tags this can produce, so nothing else reaches the page even if a rule
// above had a hole. Safe by construction, checked twice.
const SAFE_URL = /^(?:https?:|mailto:)/i;
const md = window.markdownit({ html: false, linkify: true, breaks: true, typographer: false });
md.disable(["image"]);
md.validateLink = (url) => SAFE_URL.test(url.trim());
md.linkify.set({ fuzzyEmail: false });

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// @login, @all, @here, #room and <t:…> inside text (never inside code, which markdown-it keeps in other tokens,
// nor inside a link's text)
const REF_RE = /(^|[^\w.@-])@(all|here|[a-z0-9_][a-z0-9_.-]{0,31})|(^|[^\w&#])#([a-z0-9][a-z0-9_-]{0,79})|<t:(-?\d{1,12})(?::([tTdDfFR]))?>/gi;
md.core.ruler.push("chatto_refs", (state) => {
  for (const block of state.tokens) {
    if (block.type !== "inline" || !block.children) continue;
    const out = [];
    let inLink = 0;
    for (const t of block.children) {
      if (t.type === "link_open") inLink++;
      if (t.type === "link_close") inLink--;
      if (t.type !== "text" || inLink) { out.push(t); continue; }
      let last = 0;
      const text = t.content;
      for (const m of text.matchAll(REF_RE)) {
        const lead = m[1] || m[3] || "";
        const start = m.index + lead.length;
        let ref = null;
        if (m[2]) {
          const login = m[2].replace(/[.-]+$/, "").toLowerCase();
          if (login === "all" || login === "here") ref = { type: "mention_all", content: login };
          else {
            const u = [...S.users.values()].find((x) => x.login === login);
            if (u) ref = { type: "mention", content: login, meta: { id: u.id } };
          }
          if (ref) ref.len = 1 + login.length;
        } else if (m[4]) {
          const name = m[4].toLowerCase();
          const room = [...S.rooms.values()].find((x) => !x.room.isDm && (x.room.name || "").toLowerCase() === name);
          if (room) ref = { type: "room_ref", content: room.room.name, meta: { id: room.room.id }, len: 1 + m[4].length };
        } else {
          ref = { type: "timestamp", content: m[5], meta: { style: m[6] || "f" }, len: m[0].length };
        }
        if (!ref) continue;
        if (start > last) { const x = new state.Token("text", "", 0); x.content = text.slice(last, start); out.push(x); }
        const tok = new state.Token(ref.type, "", 0);
        tok.content = ref.content;
        tok.meta = ref.meta || null;
        out.push(tok);
        last = start + ref.len;
      }
      if (last === 0) { out.push(t); continue; }
      if (last < text.length) { const x = new state.Token("text", "", 0); x.content = text.slice(last); out.push(x); }
    }
    block.children = out;
  }
});
md.renderer.rules.mention = (t, i) => '<span class="mention" data-user="' + escapeHtml(t[i].meta.id) + '">@' + escapeHtml(t[i].content) + "</span>";
md.renderer.rules.mention_all = (t, i) => '<span class="mention broad">@' + escapeHtml(t[i].content) + "</span>";
md.renderer.rules.room_ref = (t, i) => '<a class="room-ref" href="#/room/' + escapeHtml(encodeURIComponent(t[i].meta.id)) + '" data-room="' + escapeHtml(t[i].meta.id) + '">#' + escapeHtml(t[i].content) + "</a>";
md.renderer.rules.timestamp = (t, i) => '<time class="ts" data-ts="' + escapeHtml(t[i].content) + '" data-style="' + escapeHtml(t[i].meta.style) + '"></time>';

const PURIFY = {
  ALLOWED_TAGS: ["p", "br", "em", "strong", "s", "del", "a", "code", "pre", "blockquote", "ul", "ol", "li", "table",
    "thead", "tbody", "tr", "th", "td", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "span", "time"],
  ALLOWED_ATTR: ["href", "title", "class", "data-user", "data-room", "data-ts", "data-style", "start"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#\/room\/)/i,
};

function fmtStamp(secs, style) {
  const d = new Date(Number(secs) * 1000);
  if (isNaN(d.getTime())) return "<t:" + secs + ">";
  if (style === "R") {
    const diff = (d.getTime() - Date.now()) / 1000, rtf = new Intl.RelativeTimeFormat([], { numeric: "auto" });
    for (const [unit, s] of [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]])
      if (Math.abs(diff) >= s) return rtf.format(Math.round(diff / s), unit);
    return rtf.format(Math.round(diff), "second");
  }
  const o = { t: { timeStyle: "short" }, T: { timeStyle: "medium" }, d: { dateStyle: "short" }, D: { dateStyle: "long" },
    f: { dateStyle: "long", timeStyle: "short" }, F: { dateStyle: "full", timeStyle: "short" } }[style] || { dateStyle: "long", timeStyle: "short" };
  return d.toLocaleString([], o);
}

// Render a message body into target.
function renderText(text, target) {
  target.innerHTML = window.DOMPurify.sanitize(md.render(text), PURIFY);
  for (const a of target.querySelectorAll("a[href]")) {
    if (a.classList.contains("room-ref")) {
      a.addEventListener("click", (e) => { e.preventDefault(); openRoom(a.dataset.room); });
    } else {
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
    }
  }
  for (const t of target.querySelectorAll("time.ts")) {
    const d = new Date(Number(t.dataset.ts) * 1000);
    t.textContent = fmtStamp(t.dataset.ts, t.dataset.style);
    if (!isNaN(d.getTime())) { t.dateTime = d.toISOString(); t.title = d.toLocaleString([], { dateStyle: "full", timeStyle: "long" }); }
  }
  for (const m of target.querySelectorAll(".mention[data-user]")) {
    if (m.dataset.user === S.me.id) m.classList.add("self");
    m.addEventListener("click", () => showUser(m.dataset.user));
  }
  for (const pre of target.querySelectorAll("pre")) {
    const copy = el("button", { type: "button", class: "copy", title: "Copy", "aria-label": "Copy code", text: "Copy" });
    copy.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(pre.querySelector("code").textContent); copy.textContent = "Copied"; }
      catch (e) { copy.textContent = "Select and copy"; }
      setTimeout(() => { copy.textContent = "Copy"; }, 1500);
    });
    pre.append(copy);
  }
}

// A small card about someone (from a mention): name, login, presence.
function showUser(id) {
  const u = S.users.get(id);
  if (!u) return;
  dialog(u.displayName || u.login, [el("div", { class: "profile-row" }, avatar(id, "avatar large"),
    el("div", {}, el("div", { text: "@" + u.login }), el("div", { class: "muted", text: S.presence.get(id) || "offline" })))], null);
}

const fmtTime = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const fmtDay = (iso) => new Date(iso).toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());

function banner(text) {
  const b = $("banner");
  b.textContent = text || "";
  b.hidden = !text;
}

// ---------------------------------------------------------------- auth

let registering = false;

function showAuth() {
  $("app").hidden = true;
  $("auth").hidden = false;
  $("auth-login").focus();
}

function setAuthMode(reg) {
  registering = reg;
  $("auth-title").textContent = reg ? "Create your account" : "Log in to continue";
  $("auth-submit").textContent = reg ? "Create account" : "Log in";
  $("auth-switch").textContent = reg ? "I already have an account" : "Create an account";
  $("auth-display-row").hidden = !reg;
  $("auth-password").autocomplete = reg ? "new-password" : "current-password";
  $("auth-error").textContent = "";
}

const friendly = {
  "invalid login or password": "That login and password do not match.",
  "login: login taken": "That login is taken. Pick another one.",
};

$("auth-switch").addEventListener("click", () => setAuthMode(!registering));
$("auth-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { login: $("auth-login").value.trim(), password: $("auth-password").value };
  if (registering && $("auth-display").value.trim()) body.displayName = $("auth-display").value.trim();
  $("auth-submit").disabled = true;
  try {
    const r = await post(registering ? "/auth/register" : "/auth/login", body);
    S.me = r.user;
    $("auth-password").value = "";
    await start();
  } catch (e) {
    let msg = friendly[e.message] || e.message;
    if (e.status === 429) msg = "Too many attempts. " + e.message;
    $("auth-error").textContent = msg;
  } finally {
    $("auth-submit").disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try { await post("/auth/logout", {}); } catch (e) { /* already gone */ }
  location.reload();
});

// ---------------------------------------------------------------- sidebar

async function loadRooms() {
  const r = await api("chatto.api.v1.RoomService/ListRooms");
  S.rooms.clear();
  for (const x of r.rooms) S.rooms.set(x.room.id, x);
  const dmUsers = r.rooms.filter((x) => x.room.isDm).flatMap((x) => x.room.participantIds || []);
  await ensureUsers(dmUsers);
  renderSidebar();
}

function renderSidebar() {
  const rooms = $("room-list"), dms = $("dm-list");
  // a rebuild keeps keyboard focus on the room item that had it (updates arrive while one tabs through the list)
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("li[data-room]");
  const focusRoom = focused && (rooms.contains(focused) || dms.contains(focused)) ? focused.dataset.room : null;
  rooms.replaceChildren();
  dms.replaceChildren();
  const joined = [...S.rooms.values()].filter((x) => x.joined)
    .sort((a, b) => roomTitle(a).localeCompare(roomTitle(b)));
  for (const x of joined) {
    const li = el("li", {
      tabindex: "0", role: "button", dataset: { room: x.room.id, testid: "room-item" },
      class: (x.room.id === S.current ? "active " : "") + (x.unreadCount ? "unread" : ""),
      onclick: () => openRoom(x.room.id),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openRoom(x.room.id); } },
    });
    if (x.room.isDm) {
      const other = (x.room.participantIds || []).find((id) => id !== S.me.id);
      li.append(avatar(other, "avatar small"));
      li.append(el("span", { class: "dot " + (S.presence.get(other) || "offline"), dataset: { user: other || "" } }));
    }
    li.append(el("span", { class: "label", text: roomTitle(x) }));
    if (x.room.isDm) {
      const badge = statusBadge((x.room.participantIds || []).find((id) => id !== S.me.id));
      if (badge) li.append(badge);
    }
    if (x.room.activeCall) li.append(callIndicator(x.room.activeCall));
    if (x.mentionCount) li.append(el("span", { class: "badge mention-count", title: "mentions", text: String(x.mentionCount) }));
    else if (x.unreadCount) li.append(el("span", { class: "badge unread-count", title: "unread", text: String(x.unreadCount) }));
    (x.room.isDm ? dms : rooms).append(li);
    if (x.room.id === focusRoom) li.focus();
  }
}

// ---------------------------------------------------------------- timeline

function itemOf(ev) { return ev.messagePosted ? ev.messagePosted.message : null; }

function mergeEvents(roomId, events, atStart) {
  const t = S.timeline.get(roomId);
  const seen = new Set(t.items.map((e) => e.id));
  const fresh = events.filter((e) => !seen.has(e.id));
  t.items = atStart ? fresh.concat(t.items) : t.items.concat(fresh);
  t.items.sort((a, b) => Number(a.cursor) - Number(b.cursor));
}

async function openRoom(roomId) {
  const around = S.timeline.get(roomId);
  if (around && around.aroundSearch === true) S.timeline.delete(roomId); // a search result's page: show the newest again
  S.current = roomId;
  if (S.replyTo && S.replyTo.roomId !== roomId) cancelReply();
  renderUploads();
  $("app").classList.remove("show-side");
  const x = S.rooms.get(roomId);
  $("room-name").textContent = x ? roomTitle(x) : "";
  $("room-desc").textContent = x && !x.room.isDm ? x.room.description : "";
  $("member-count").textContent = x && x.memberCount ? String(x.memberCount) : "";
  $("composer-input").disabled = !!(x && x.room.archived);
  $("composer-input").placeholder = x && x.room.archived ? "This room is archived" : "Message " + (x ? roomTitle(x) : "");
  location.hash = "#/room/" + encodeURIComponent(roomId);
  if (!S.timeline.has(roomId)) {
    S.timeline.set(roomId, { items: [], hasOlder: true, loading: false });
    await loadPage(roomId, null);
  }
  // a "New messages" line above the first message that was unread when the room was opened
  const t = S.timeline.get(roomId);
  t.firstUnread = null;
  let left = x ? x.unreadCount || 0 : 0;
  let oldest = null;
  for (let i = t.items.length - 1; i >= 0 && left > 0; i--) {
    const m = itemOf(t.items[i]);
    if (m) oldest = m.id;
    if (m && !m.threadRootEventId && m.actorId !== S.me.id && !m.deletedAt && --left === 0) t.firstUnread = m.id;
  }
  // more unread than this history holds (older pages, or messages still on their way): mark from the oldest shown
  if (left > 0 && !t.firstUnread) t.firstUnread = oldest;
  renderTimeline(true);
  const line = $("messages").querySelector(".new-line");
  if (line) line.scrollIntoView({ block: "start" });
  renderSidebar();
  renderCall();
  renderTyping();
  markRead();
  $("composer-input").focus();
}

async function loadPage(roomId, before) {
  const t = S.timeline.get(roomId);
  if (t.loading) return;
  t.loading = true;
  try {
    const req = { roomId, limit: 50 };
    if (before) req.before = before;
    const r = await api("chatto.api.v1.RoomService/GetRoomEvents", req);
    for (const [id, u] of Object.entries(r.page.includes.users || {})) if (!S.users.has(id) || !S.users.get(id).login) S.users.set(id, u);
    mergeEvents(roomId, r.page.events, true);
    t.hasOlder = r.page.hasOlder;
  } finally {
    t.loading = false;
  }
}

$("messages").addEventListener("scroll", async () => {
  const box = $("messages"), t = S.timeline.get(S.current);
  if (!t || !t.hasOlder || t.loading || box.scrollTop > 80) return;
  const oldest = t.items[0];
  if (!oldest) return;
  const before = box.scrollHeight;
  await loadPage(S.current, oldest.cursor);
  renderTimeline(false);
  box.scrollTop = box.scrollHeight - before + box.scrollTop;
});

function systemText(ev) {
  if (ev.roomCreated) return userName(ev.actorId) + " created the room";
  if (ev.roomUpdated) return userName(ev.actorId) + " updated the room";
  if (ev.roomArchived) return userName(ev.actorId) + " archived the room";
  if (ev.roomUnarchived) return userName(ev.actorId) + " unarchived the room";
  if (ev.userJoinedRoom) return userName(ev.userJoinedRoom.userId) + " joined";
  if (ev.userLeftRoom) return userName(ev.userLeftRoom.userId) + " left";
  if (ev.callStarted) return userName(ev.actorId) + " started a call";
  if (ev.callEnded) return "The call ended";
  return null;
}

function renderTimeline(scrollToEnd) {
  const box = $("messages");
  const t = S.timeline.get(S.current);
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren();
  if (!t) return;
  let day = null, prev = null;
  const firstUnread = t.firstUnread; // the id of the first message that was unread when the room was opened
  for (const ev of t.items) {
    const d = fmtDay(ev.createdAt);
    if (d !== day) {
      day = d;
      prev = null;
      box.append(el("div", { class: "day" }, el("span", { text: d })));
    }
    const m = itemOf(ev);
    if (m && m.id === firstUnread) {
      box.append(el("div", { class: "new-line", dataset: { testid: "new-messages" } }, el("span", { text: "New messages" })));
      prev = null;
    }
    if (m) {
      // consecutive messages by one author within 5 minutes read as one block (as in Slack)
      const grouped = prev && !prev.deletedAt && !m.deletedAt && prev.actorId === m.actorId &&
        new Date(m.createdAt) - new Date(prev.createdAt) < 5 * 60 * 1000;
      box.append(renderMessage(m, false, grouped));
      prev = m;
    } else {
      prev = null;
      const txt = systemText(ev);
      if (txt) box.append(el("div", { class: "system", text: txt }));
    }
  }

  if (scrollToEnd || atEnd) box.scrollTop = box.scrollHeight;
}

const QUICK = ["👍", "❤️", "😂", "🎉", "👀", "✅"];

function renderMessage(m, inThread, grouped) {
  const mine = m.actorId === S.me.id;
  const div = el("article", { class: "msg" + (m.deletedAt ? " deleted" : "") + (grouped ? " grouped" : ""),
    dataset: { id: m.id, testid: "message", mine: mine ? "1" : "0" } });
  if (grouped) div.append(el("time", { class: "side-time", datetime: m.createdAt, title: new Date(m.createdAt).toLocaleString(), text: fmtTime(m.createdAt) }));
  else div.append(avatar(m.actorId));
  const meta = el("div", { class: "meta" },
    el("span", { class: "dot " + (S.presence.get(m.actorId) || "offline"), dataset: { user: m.actorId } }),
    el("span", { class: "author", text: userName(m.actorId) }), statusBadge(m.actorId),
    el("time", { datetime: m.createdAt, title: new Date(m.createdAt).toLocaleString(), text: fmtTime(m.createdAt) }));
  if (m.edited && !m.deletedAt) meta.append(el("span", { class: "edited", text: "(edited)" }));
  if (m.pinned && !m.deletedAt) meta.append(el("span", { class: "pinned-mark", text: "Pinned", dataset: { testid: "pinned" } }));
  div.append(meta);
  if (m.inReplyTo && !m.threadRootEventId && !m.deletedAt) div.append(quoteOf(m.roomId, m.inReplyTo));
  const body = el("div", { class: "body", dataset: { testid: "body" } });
  if (m.deletedAt) body.textContent = "This message was deleted.";
  else {
    renderText(m.body || "", body);
    if ((m.mentions || []).includes(S.me.id) || (m.mentionsAll && m.actorId !== S.me.id)) body.classList.add("mention-me");
  }
  div.append(body);
  if (!m.deletedAt && m.attachments && m.attachments.length) div.append(renderAttachments(m.attachments));
  if (!m.deletedAt) {
    if (m.reactions && m.reactions.length) {
      const rx = el("div", { class: "reactions" });
      for (const r of m.reactions) {
        rx.append(el("button", {
          type: "button", class: r.hasReacted ? "mine" : "", "aria-pressed": String(r.hasReacted),
          title: r.hasReacted ? "Remove your reaction" : "React", dataset: { emoji: r.emoji },
          onclick: () => react(m, r.emoji, !r.hasReacted), text: r.emoji + " " + r.count,
        }));
      }
      div.append(rx);
    }
    if (!inThread && m.thread && m.thread.replyCount) {
      div.append(el("button", {
        type: "button", class: "link thread-link", onclick: () => openThread(m.roomId, m.id),
        text: m.thread.replyCount + (m.thread.replyCount === 1 ? " reply" : " replies"),
      }));
    }
    const actions = el("div", { class: "actions" });
    for (const e of QUICK) {
      actions.append(el("button", { type: "button", title: "React " + e, "aria-label": "React " + e, text: e,
        onclick: () => { useEmoji(e); react(m, e, !(m.reactions || []).some((r) => r.emoji === e && r.hasReacted)); } }));
    }
    actions.append(el("button", { type: "button", title: "Add a reaction", "aria-label": "Add a reaction",
      onclick: async () => { const e = await pickEmoji("React with…"); if (e) react(m, e, true); } }, icon("smile")));
    if (!inThread) actions.append(el("button", { type: "button", title: "Reply in thread", "aria-label": "Reply in thread",
      onclick: () => openThread(m.roomId, m.id) }, icon("thread")));
    if (!inThread && !m.threadRootEventId) actions.append(el("button", { type: "button", title: "Quote and reply", text: "Reply",
      class: "text-action", "aria-label": "Quote and reply", onclick: () => startReply(m) }));
    if (mine) actions.append(el("button", { type: "button", title: "Edit", "aria-label": "Edit message",
      onclick: () => startEdit(div, m) }, icon("edit")));
    const entry = S.rooms.get(m.roomId);
    const roomAdmin = S.me.role === "owner" || S.me.role === "admin" || (entry && ["owner", "admin"].includes(entry.role));
    if (roomAdmin && entry && !entry.room.isDm && !entry.room.archived) {
      actions.append(el("button", { type: "button", title: m.pinned ? "Unpin" : "Pin", text: m.pinned ? "Unpin" : "Pin",
        "aria-label": m.pinned ? "Unpin message" : "Pin message", class: "text-action",
        onclick: () => api("chatto.api.v1.RoomService/" + (m.pinned ? "DeletePinnedMessage" : "CreatePinnedMessage"),
          { roomId: m.roomId, messageEventId: m.id }).then(() => { m.pinned = !m.pinned; rerender(); }).catch((e) => alertLine(e.message)) }));
    }
    if (mine || S.me.role === "owner" || S.me.role === "admin" || (entry && ["owner", "admin"].includes(entry.role))) {
      actions.append(el("button", { type: "button", title: "Delete", "aria-label": "Delete message",
        onclick: () => deleteMessage(m) }, icon("trash")));
    }
    div.append(actions);
  }
  return div;
}

// ---------------------------------------------------------------- files

const INLINE_IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];

function fmtSize(n) {
  n = Number(n) || 0;
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

function renderAttachments(list) {
  const box = el("div", { class: "attachments" });
  for (const a of list) {
    const url = a.assetUrl && a.assetUrl.url;
    if (!url) continue;
    // the server's thumbnail when it offers one (any image it can resize); the original otherwise
    const thumb = (a.thumbnailAssetUrl && a.thumbnailAssetUrl.url) || (INLINE_IMAGES.includes(a.contentType) && !(a.width * a.height > 40e6) ? url : "");
    if (thumb) {
      const props = { src: thumb, alt: a.filename, loading: "lazy", dataset: { testid: "attachment-image" } };
      if (a.width && a.height) { props.width = String(a.width); props.height = String(a.height); }
      const img = el("img", props);
      img.addEventListener("click", () => dialog(a.filename, [el("img", { class: "full-image", src: url, alt: a.filename }),
        el("a", { href: url, download: a.filename, text: "Download (" + fmtSize(a.size) + ")" })], null));
      box.append(img);
    } else {
      box.append(el("a", { class: "file-card", href: url, download: a.filename, dataset: { testid: "attachment-file" } },
        el("span", { class: "name", text: a.filename }),
        el("span", { class: "info", text: fmtSize(a.size) + " · " + (a.contentType || "file") })));
    }
  }
  return box;
}

// Uploads: the whole file's SHA-256 first (the server checks every byte against it), then chunks of at most
// 512 KiB as raw bytes; a dropped chunk is resumed from the server's committed offset.
const CHUNK = 512 * 1024;
S.uploads = []; // {id, file, roomId, sent, state: "uploading"|"done"|"failed", asset, abort, uploadId, error}

async function sha256Hex(buf) {
  if (window.crypto && crypto.subtle) {
    const h = await crypto.subtle.digest("SHA-256", buf);
    return [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return sha256Fallback(new Uint8Array(buf));
}

// SHA-256 for pages served over plain http from another host, where crypto.subtle does not exist (FIPS 180-4).
function sha256Fallback(data) {
  const K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1,
    0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
    0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3,
    0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb,
    0xbef9a3f7, 0xc67178f2];
  const H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const n = data.length, total = Math.ceil((n + 9) / 64) * 64, m = new Uint8Array(total);
  m.set(data); m[n] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(n / 0x20000000)); dv.setUint32(total - 4, (n * 8) >>> 0);
  const w = new Uint32Array(64), r = (x, k) => (x >>> k) | (x << (32 - k));
  for (let o = 0; o < total; o += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(o + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = r(w[i - 15], 7) ^ r(w[i - 15], 18) ^ (w[i - 15] >>> 3), s1 = r(w[i - 2], 17) ^ r(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] = (H[0] + a) >>> 0; H[1] = (H[1] + b) >>> 0; H[2] = (H[2] + c) >>> 0; H[3] = (H[3] + d) >>> 0;
    H[4] = (H[4] + e) >>> 0; H[5] = (H[5] + f) >>> 0; H[6] = (H[6] + g) >>> 0; H[7] = (H[7] + h) >>> 0;
  }
  return H.map((x) => x.toString(16).padStart(8, "0")).join("");
}

async function putChunk(up, offset, bytes) {
  const r = await fetch("/api/assets/uploads/" + up.uploadId + "?offset=" + offset, {
    method: "PUT", credentials: "same-origin", body: bytes, signal: up.abort.signal,
    headers: { "Content-Type": "application/octet-stream", "X-Chunk-SHA256": await sha256Hex(bytes) },
  });
  let data = {};
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, data.code || "unknown", data.message || r.statusText);
  return data.upload;
}

async function runUpload(up) {
  const buf = await up.file.arrayBuffer();
  const created = await api("chatto.api.v1.AssetUploadService/CreateUpload", {
    roomId: up.roomId, filename: up.file.name || "pasted.png", contentType: up.file.type || "",
    size: String(buf.byteLength), sha256: await sha256Hex(buf),
  });
  up.uploadId = created.upload.uploadId;
  let offset = 0, failures = 0;
  while (offset < buf.byteLength) {
    if (up.abort.signal.aborted) throw new ApiError(0, "cancelled", "cancelled");
    try {
      const state = await putChunk(up, offset, buf.slice(offset, Math.min(offset + CHUNK, buf.byteLength)));
      offset = Number(state.committedOffset);
      failures = 0;
    } catch (e) {
      if (up.abort.signal.aborted || (e.status && e.status < 500 && e.status !== 409 && e.code !== "failed_precondition") || ++failures > 5) throw e;
      await new Promise((ok) => setTimeout(ok, 500 * failures));
      // resume where the server says (the chunk may have arrived even though its answer did not)
      try { offset = Number((await api("chatto.api.v1.AssetUploadService/GetUpload", { uploadId: up.uploadId })).upload.committedOffset); }
      catch (e2) { /* try the chunk again */ }
    }
    up.sent = offset;
    renderUploads();
  }
  const done = await api("chatto.api.v1.AssetUploadService/CompleteUpload", { uploadId: up.uploadId });
  return done.asset;
}

let uploadSeq = 0;
function addFiles(files) {
  if (!S.current) return;
  for (const file of files) {
    const up = { id: ++uploadSeq, file, roomId: S.current, sent: 0, state: "uploading", abort: new AbortController() };
    S.uploads.push(up);
    runUpload(up).then((asset) => { up.asset = asset; up.state = "done"; renderUploads(); })
      .catch((e) => {
        if (up.abort.signal.aborted) return;
        up.state = "failed"; up.error = e.message; renderUploads();
      });
  }
  renderUploads();
}

function cancelUpload(up) {
  up.abort.abort();
  if (up.uploadId && up.state === "uploading") api("chatto.api.v1.AssetUploadService/CancelUpload", { uploadId: up.uploadId }).catch(() => {});
  S.uploads = S.uploads.filter((x) => x !== up);
  renderUploads();
}

function renderUploads() {
  const list = $("uploads"), mine = S.uploads.filter((u) => u.roomId === S.current);
  list.hidden = mine.length === 0;
  list.replaceChildren(...mine.map((u) => el("li", { class: u.state, dataset: { testid: "upload", state: u.state } },
    el("span", { class: "name", text: u.file.name || "pasted image", title: u.error || "" }),
    u.state === "uploading" ? el("progress", { max: String(u.file.size || 1), value: String(u.sent), "aria-label": "Upload progress" })
      : el("span", { class: "muted", text: u.state === "done" ? fmtSize(u.file.size) : "failed: " + u.error }),
    el("button", { type: "button", "aria-label": "Remove " + (u.file.name || "file"), title: "Cancel", onclick: () => cancelUpload(u) }, icon("close", 14)))));
}

$("attach").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", (e) => { addFiles([...e.target.files]); e.target.value = ""; });
$("composer-input").addEventListener("paste", (e) => {
  const files = [...(e.clipboardData ? e.clipboardData.files : [])];
  if (files.length) { e.preventDefault(); addFiles(files); }
});
for (const ev of ["dragenter", "dragover"]) $("messages").addEventListener(ev, (e) => {
  if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) { e.preventDefault(); $("messages").classList.add("dropping"); }
});
$("messages").addEventListener("dragleave", () => $("messages").classList.remove("dropping"));
$("messages").addEventListener("drop", (e) => {
  $("messages").classList.remove("dropping");
  if (e.dataTransfer && e.dataTransfer.files.length) { e.preventDefault(); addFiles([...e.dataTransfer.files]); }
});

function replaceMessage(m) {
  const t = S.timeline.get(m.roomId);
  if (t) {
    for (const ev of t.items) if (ev.messagePosted && ev.messagePosted.message.id === m.id) ev.messagePosted.message = m;
  }
  if (S.thread && S.thread.roomId === m.roomId) {
    if (S.thread.root && S.thread.root.id === m.id) S.thread.root = m;
    S.thread.items = (S.thread.items || []).map((x) => (x.id === m.id ? m : x));
  }
}

function rerender() {
  if (S.current) renderTimeline(false);
  if (S.thread) renderThread();
}

async function react(m, emoji, add) {
  try {
    const r = await api("chatto.api.v1.MessageService/" + (add ? "AddReaction" : "RemoveReaction"),
      { roomId: m.roomId, eventId: m.id, emoji });
    replaceMessage(r.message);
    rerender();
  } catch (e) { banner(e.message); setTimeout(() => banner(S.ws && S.ws.readyState === 1 ? "" : $("banner").textContent), 3000); }
}

function startEdit(div, m) {
  const body = div.querySelector(".body");
  const box = el("textarea", { rows: "2", "aria-label": "Edit message" });
  box.value = m.body;
  const save = async () => {
    try {
      const r = await api("chatto.api.v1.MessageService/UpdateMessage", { roomId: m.roomId, eventId: m.id, body: box.value });
      replaceMessage(r.message);
    } catch (e) { alertLine(e.message); }
    rerender();
  };
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); save(); }
    if (e.key === "Escape") { e.preventDefault(); rerender(); }
  });
  body.replaceWith(el("div", { class: "edit-box" }, box, el("span", { class: "muted", text: "Enter to save, Escape to cancel" })));
  box.focus();
}

async function deleteMessage(m) {
  if (!confirm("Delete this message?")) return;
  try { await api("chatto.api.v1.MessageService/DeleteMessage", { roomId: m.roomId, eventId: m.id }); }
  catch (e) { alertLine(e.message); }
}

function alertLine(text) {
  $("typing").textContent = text;
  setTimeout(renderTyping, 4000);
}

// ---------------------------------------------------------------- sending

async function send(roomId, text, threadRoot, assetIds, inReplyTo) {
  const body = { roomId, body: text };
  if (inReplyTo) body.inReplyTo = inReplyTo;
  if (assetIds && assetIds.length) body.attachmentAssetIds = assetIds;
  if (threadRoot) body.threadRootEventId = threadRoot;
  const key = newKey();
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await api("chatto.api.v1.MessageService/CreateMessage", body, { "Idempotency-Key": key });
      return r.message;
    } catch (e) {
      // a retry with the same key is stored once; only retry what may not have arrived
      if (attempt < 3 && (e.status === 0 || e.status === 503)) { await new Promise((ok) => setTimeout(ok, 500 * (attempt + 1))); continue; }
      throw e;
    }
  }
}

function composerKeys(input, popupOwner) {
  input.addEventListener("keydown", (e) => {
    if (popupOwner && mention.open && mention.input === input) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); moveMention(e.key === "ArrowDown" ? 1 : -1); return; }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pickMention(); return; }
      if (e.key === "Escape") { e.preventDefault(); closeMention(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); input.form.requestSubmit(); }
    if (e.key === "Escape" && popupOwner && S.replyTo) { e.preventDefault(); cancelReply(); }
    if (e.key === "ArrowUp" && !input.value) { // Up in an empty composer edits one's last message
      const box = input === $("thread-input") ? $("thread-messages") : $("messages");
      const mine = [...box.querySelectorAll("article.msg:not(.deleted)")].filter((a) => a.dataset.mine === "1").pop();
      if (mine) { e.preventDefault(); mine.querySelector('[aria-label="Edit message"]').click(); }
    }
  });
  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = input.scrollHeight + "px";
    if (popupOwner) updateMention(input);
    typingPing(input === $("thread-input") && S.thread ? S.thread.rootId : null);
  });
}

// "all" or "here" if text pings a whole room the way the server counts it (not in code, not in a quote)
function broadPing(text) {
  let quote = 0, found = null;
  for (const t of md.parse(text, {})) {
    if (t.type === "blockquote_open") quote++;
    if (t.type === "blockquote_close") quote--;
    if (t.type === "inline" && !quote) for (const c of t.children || []) if (c.type === "mention_all") found = found || c.content;
  }
  return found;
}

// Ask before pinging more than 20 people at once.
function confirmBroad(roomId, text) {
  const kind = broadPing(text), entry = S.rooms.get(roomId);
  const n = entry && entry.memberCount ? entry.memberCount - 1 : 0;
  if (!kind || n <= 20) return Promise.resolve(true);
  return new Promise((resolve) => {
    let answered = false;
    $("dialog").addEventListener("close", () => { if (!answered) resolve(false); }, { once: true });
    dialog("Notify everyone?", [el("p", { text: "@" + kind + " will notify " + (kind === "here" ? "everyone online among the " : "all ") +
      n + " other members of " + roomTitle(entry) + "." })], async () => { answered = true; resolve(true); }, "Send and notify");
  });
}

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("composer-input"), text = input.value;
  const mine = S.uploads.filter((u) => u.roomId === S.current);
  if (mine.some((u) => u.state === "uploading")) { alertLine("Wait for the files to finish uploading."); return; }
  const ready = mine.filter((u) => u.state === "done");
  if ((!text.trim() && !ready.length) || !S.current) return;
  if (!(await confirmBroad(S.current, text))) return;
  input.value = "";
  input.style.height = "auto";
  closeMention();
  const reply = S.replyTo && S.replyTo.roomId === S.current ? S.replyTo.id : null;
  try {
    const m = await send(S.current, text.trim() ? text : "", null, ready.map((u) => u.asset.id), reply);
    if (reply) cancelReply();
    S.uploads = S.uploads.filter((u) => !ready.includes(u));
    renderUploads();
    addMessage(m);
  } catch (err) {
    input.value = text;
    alertLine(err.message);
  }
});

function typingPing(threadRoot) {
  const now = Date.now(), where = S.current + "/" + (threadRoot || "");
  // at most one ping every 3 s per place (typing in a thread, then in the room, tells the room at once)
  if (!S.current || (S.lastTypingWhere === where && now - S.lastTypingSent < 3000)) return;
  S.lastTypingSent = now;
  S.lastTypingWhere = where;
  const body = { roomId: S.current };
  if (threadRoot) body.threadRootEventId = threadRoot;
  api("chatto.api.v1.RoomService/UpdateTypingIndicator", body).catch(() => {});
}

function renderTyping() {
  const list = (S.typing.get(S.current) || []).filter((t) => t.userId !== S.me.id);
  const names = list.map((t) => userName(t.userId));
  $("typing").textContent = names.length === 0 ? "" : names.length === 1 ? names[0] + " is typing…"
    : names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
}

// ---------------------------------------------------------------- mentions

const mention = { open: false, input: null, start: 0, items: [], sel: 0 };

function updateMention(input) {
  const upto = input.value.slice(0, input.selectionStart);
  const m = /(^|[^\w.-])@([\w.-]{0,32})$/.exec(upto);
  if (!m) { closeMention(); return; }
  const q = m[2].toLowerCase();
  const items = [...S.users.values()].filter((u) => !u.deleted && (u.login.startsWith(q) || (u.displayName || "").toLowerCase().startsWith(q)))
    .sort((a, b) => a.login.localeCompare(b.login)).slice(0, 8);
  if (!items.length) { closeMention(); return; }
  Object.assign(mention, { open: true, input, start: upto.length - q.length, items, sel: 0 });
  const pop = $("mention-popup");
  pop.replaceChildren(...items.map((u, i) => el("li", {
    role: "option", "aria-selected": String(i === 0), dataset: { login: u.login },
    onmousedown: (e) => { e.preventDefault(); mention.sel = i; pickMention(); },
    text: (u.displayName || u.login) + " @" + u.login,
  })));
  pop.hidden = false;
}

function moveMention(d) {
  mention.sel = (mention.sel + d + mention.items.length) % mention.items.length;
  [...$("mention-popup").children].forEach((li, i) => li.setAttribute("aria-selected", String(i === mention.sel)));
}

function pickMention() {
  const u = mention.items[mention.sel], input = mention.input;
  const pos = input.selectionStart;
  input.value = input.value.slice(0, mention.start) + u.login + " " + input.value.slice(pos);
  const caret = mention.start + u.login.length + 1;
  input.setSelectionRange(caret, caret);
  closeMention();
  input.focus();
}

function closeMention() {
  mention.open = false;
  $("mention-popup").hidden = true;
}

// ---------------------------------------------------------------- threads

async function openThread(roomId, rootId) {
  S.thread = { roomId, rootId, root: null, items: [] };
  $("thread").hidden = false;
  const r = await api("chatto.api.v1.ThreadService/GetThreadReplies", { roomId, threadRootEventId: rootId, limit: 100 });
  await ensureUsers(r.page.events.map((e) => e.actorId));
  S.thread.root = r.root;
  S.thread.items = r.page.events.map(itemOf);
  renderThread();
  $("thread-input").focus();
  markThreadRead();
  renderFollow();
}

// ---------------------------------------------------------------- notifications

const SIGNALS = {
  directMentionReceived: "mentioned you", directMessageReceived: "sent you a message", hereMentionReceived: "notified @here",
  allMentionReceived: "notified @all", replyReceived: "replied to you", followedThreadActivity: "replied in a thread you follow",
  reactionReceived: "reacted",
};
function setBell(n) {
  $("bell-badge").textContent = String(n || "");
  $("bell-badge").hidden = !n;
}
async function loadBell() {
  try { setBell((await api("chatto.api.v1.NotificationService/ListNotificationOccurrences", { page: { limit: 1 } })).unreadCount); }
  catch (e) { /* cosmetic */ }
}

async function showInbox() {
  const list = el("ul", { class: "inbox", dataset: { testid: "inbox" } });
  let r;
  try { r = await api("chatto.api.v1.NotificationService/ListNotificationOccurrences", { page: { limit: 100 } }); }
  catch (e) { alertLine(e.message); return; }
  setBell(r.unreadCount);
  for (const o of r.occurrences) {
    const kind = Object.keys(o.signal)[0], sig = o.signal[kind], ref = sig.message || {};
    if (o.actor && o.actor.id && !S.users.has(o.actor.id)) S.users.set(o.actor.id, o.actor);
    const where = ref.room ? (ref.room.isDm ? "direct message" : "#" + (ref.room.name || "")) : "";
    const li = el("li", { class: o.unread ? "unread" : "", dataset: { testid: "notification" } },
      avatar(o.actor && o.actor.id, "avatar small"),
      el("div", { class: "what" },
        el("div", {}, el("strong", { text: userName(o.actor && o.actor.id) }), " " + (SIGNALS[kind] || "notified you") +
          (sig.emoji ? " " + sig.emoji : "") + (where ? " · " + where : "")),
        el("div", { class: "muted preview", text: o.preview || "" })),
      el("time", { class: "muted", datetime: o.createdAt, text: fmtTime(o.createdAt) }),
      el("button", { type: "button", class: "icon dismiss", title: "Dismiss", "aria-label": "Dismiss", onclick: async (e) => {
        e.stopPropagation();
        await api("chatto.api.v1.NotificationService/DeleteNotificationOccurrence", { notificationId: o.id }).catch(() => {});
        li.remove();
        loadBell();
      } }, icon("close", 14)));
    li.addEventListener("click", async () => {
      $("dialog").close();
      if (o.unread) api("chatto.api.v1.NotificationService/MarkNotificationRead", { notificationId: o.id }).then(loadBell).catch(() => {});
      if (!ref.room || !S.rooms.has(ref.room.id)) return;
      if (S.current !== ref.room.id) await openRoom(ref.room.id);
      if (ref.threadRootEventId) openThread(ref.room.id, ref.threadRootEventId);
      else { const m = findLoaded(ref.room.id, ref.eventId); if (m) jumpTo(m); }
    });
    list.append(li);
  }
  if (!r.occurrences.length) list.append(el("li", { class: "muted", text: "Nothing new. Mentions, direct messages, replies and reactions show up here." }));
  const clear = el("button", { type: "button", id: "inbox-clear", text: "Dismiss all", onclick: async () => {
    await api("chatto.api.v1.NotificationService/DeleteAllNotificationOccurrences").catch((e) => alertLine(e.message));
    setBell(0);
    list.replaceChildren(el("li", { class: "muted", text: "Nothing new." }));
  } });
  const settings = el("button", { type: "button", id: "notify-settings", text: "Settings…", onclick: () => showNotifySettings(null) });
  dialog("Notifications", [list, el("div", { class: "inbox-actions" }, clear, settings)], null);
  $("dialog").dataset.kind = "inbox";
  $("dialog").addEventListener("close", () => { delete $("dialog").dataset.kind; }, { once: true });
}
$("bell").addEventListener("click", showInbox);

// Notification settings: a delivery mode per cause, server-wide or for one room (NotificationService policies), and
// Web Push on this device (PushNotificationService; the service worker shows what arrives).
const POLICY_CLASSES = [
  ["directMessages", "Direct messages"], ["directMentions", "Mentions of you"], ["replies", "Replies to you"],
  ["hereMentions", "@here"], ["allMentions", "@all"], ["followedThreads", "Threads you follow"], ["reactions", "Reactions to your messages"],
];
const MODE_NAMES = { NOTIFICATION_DELIVERY_MODE_OFF: "Off", NOTIFICATION_DELIVERY_MODE_SILENT: "Silent", NOTIFICATION_DELIVERY_MODE_ALERT: "Alert" };
const PUSH = { key: null };
const pushSupported = () => window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
function b64uBytes(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}
function sameKey(buf, b64u) {
  if (!buf || !b64u) return false;
  const a = new Uint8Array(buf), b = b64uBytes(b64u);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
async function pushSave(sub) {
  const j = sub.toJSON();
  await api("chatto.api.v1.PushNotificationService/Subscribe", { endpoint: j.endpoint, p256dh: j.keys.p256dh, auth: j.keys.auth,
    userAgent: navigator.userAgent.slice(0, 512), clientHost: location.host });
}
async function pushCurrent() {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.ready;
  return reg.pushManager.getSubscription();
}
async function pushEnable() {
  if (!PUSH.key) throw new Error("Push notifications are turned off on this server.");
  if (!pushSupported()) throw new Error("This browser cannot receive push notifications here (it needs HTTPS or an installed app).");
  if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked for this site in the browser's settings.");
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, PUSH.key)) { await sub.unsubscribe(); sub = null; } // the server's key changed
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64uBytes(PUSH.key) });
  await pushSave(sub);
}
async function pushDisable() {
  const sub = await pushCurrent();
  if (!sub) return;
  await api("chatto.api.v1.PushNotificationService/Unsubscribe", { endpoint: sub.endpoint });
  await sub.unsubscribe();
}
// at every start: tell the server this browser's subscription again (it keeps the 16 most recently refreshed)
async function pushRefresh() {
  try {
    PUSH.key = (await api("chatto.api.v1.ServerService/GetRuntimeConfig")).runtime.vapidPublicKey || null;
    if (!PUSH.key || !pushSupported() || Notification.permission !== "granted") return;
    const sub = await pushCurrent();
    if (sub && sameKey(sub.options.applicationServerKey, PUSH.key)) await pushSave(sub);
    else if (sub) await pushEnable();
  } catch (e) { /* push is a convenience; chat works without it */ }
}

// A short chime for alerting notifications, unless the tab shows where it happened or the sound is off.
let audio = null;
function chime(occ) {
  if (!occ || !occ.alert || localStorage.getItem("chatto-sound") === "off") return;
  const ref = (Object.values(occ.signal || {})[0] || {}).message || {};
  if (document.visibilityState === "visible" && document.hasFocus() && ref.room && ref.room.id === S.current) return;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const t = audio.currentTime, o = audio.createOscillator(), g = audio.createGain();
    o.frequency.setValueAtTime(880, t);
    o.frequency.setValueAtTime(660, t + 0.09);
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    o.connect(g).connect(audio.destination);
    o.start(t);
    o.stop(t + 0.32);
  } catch (e) { /* no audio here */ }
}

async function showNotifySettings(roomId) {
  const scope = roomId ? { roomId } : {};
  let pol;
  try { pol = (await api("chatto.api.v1.NotificationService/GetNotificationPolicy", scope)).policy; }
  catch (e) { alertLine(e.message); return; }
  // what "inherit" means here: the server-wide mode for a room, the product default server-wide
  const inherited = {};
  if (roomId) {
    const server = (await api("chatto.api.v1.NotificationService/GetNotificationPolicy", {}).catch(() => ({ policy: pol }))).policy;
    for (const [k] of POLICY_CLASSES) inherited[k] = server.effective[k];
  } else {
    for (const [k] of POLICY_CLASSES) inherited[k] = pol.overrides[k] ? null : pol.effective[k];
  }
  const selects = {};
  const rows = POLICY_CLASSES.map(([k, label]) => {
    const dflt = inherited[k] ? MODE_NAMES[inherited[k]] : null;
    const sel = el("select", { id: "policy-" + k, "aria-label": label },
      el("option", { value: "", text: roomId ? "As everywhere" + (dflt ? " (" + dflt + ")" : "") : "Default" + (dflt ? " (" + dflt + ")" : "") }),
      ...Object.entries(MODE_NAMES).map(([v, t]) => el("option", { value: v, text: t })));
    sel.value = pol.overrides[k] || "";
    selects[k] = sel;
    return el("label", { class: "policy-row" }, el("span", { text: label }), sel);
  });
  const body = [el("p", { class: "muted", text: "Alert: a sound and a push. Silent: only the list. Off: nothing. Do Not Disturb keeps everything silent." }),
    el("div", { class: "policy-grid", dataset: { testid: "policy" } }, ...rows)];
  if (!roomId) {
    const pushStatus = el("span", { id: "push-status", class: "muted", "aria-live": "polite" });
    const enable = el("button", { type: "button", id: "push-enable" });
    const test = el("button", { type: "button", id: "push-test", text: "Send a test push" });
    const show = async () => {
      const sub = await pushCurrent().catch(() => null);
      enable.textContent = sub ? "Turn off push on this device" : "Turn on push on this device";
      enable.dataset.on = sub ? "1" : "";
      if (!PUSH.key) pushStatus.textContent = "Push notifications are turned off on this server.";
      else if (!pushSupported()) pushStatus.textContent = "This browser cannot receive push notifications here.";
      enable.disabled = !PUSH.key || !pushSupported();
    };
    enable.onclick = async () => {
      pushStatus.textContent = "…";
      try {
        if (enable.dataset.on) { await pushDisable(); pushStatus.textContent = "Push is off on this device."; }
        else { await pushEnable(); pushStatus.textContent = "Push is on for this device."; }
      } catch (e) { pushStatus.textContent = e.message; }
      show();
    };
    test.onclick = async () => {
      try { await api("chatto.api.v1.PushNotificationService/SendTestNotification"); pushStatus.textContent = "Sent: it should appear in a moment."; }
      catch (e) { pushStatus.textContent = e.message; }
    };
    const sound = el("input", { type: "checkbox", id: "sound-on", ...(localStorage.getItem("chatto-sound") === "off" ? {} : { checked: "" }) });
    sound.onchange = () => localStorage.setItem("chatto-sound", sound.checked ? "on" : "off");
    body.push(el("fieldset", { class: "push-box" }, el("legend", { text: "This device" }),
      el("label", { class: "check" }, sound, " Play a sound for alerts"), el("div", {}, enable, " ", test), pushStatus));
    show();
  }
  dialog(roomId ? "Notifications for " + $("room-name").textContent : "Notification settings", body, async () => {
    const overrides = {}, mask = [];
    for (const [k] of POLICY_CLASSES) {
      if ((pol.overrides[k] || "") === selects[k].value) continue;
      mask.push(k);
      if (selects[k].value) overrides[k] = selects[k].value;
    }
    if (mask.length) await api("chatto.api.v1.NotificationService/UpdateNotificationPolicy", { ...scope, overrides, updateMask: mask.join(",") });
  }, "Save");
}
$("room-notify").addEventListener("click", () => { if (S.current) showNotifySettings(S.current); });

// ---------------------------------------------------------------- followed threads

S.followed = new Map(); // root id -> {roomId, unreadCount}
function renderFollow() {
  const b = $("thread-follow"), on = !!(S.thread && S.followed.has(S.thread.rootId));
  b.textContent = on ? "Following" : "Follow";
  b.setAttribute("aria-pressed", String(on));
  b.title = on ? "Stop following: no more unread counts for this thread" : "Follow: count its new replies as unread";
}
$("thread-follow").addEventListener("click", async () => {
  if (!S.thread) return;
  const on = S.followed.has(S.thread.rootId);
  try {
    await api("chatto.api.v1.ThreadService/" + (on ? "UnfollowThread" : "FollowThread"), { roomId: S.thread.roomId, threadRootEventId: S.thread.rootId });
    await loadFollowed();
  } catch (e) { alertLine(e.message); }
});

async function loadFollowed() {
  try {
    const r = await api("chatto.api.v1.ThreadService/ListFollowedThreads", { page: { limit: 100 } });
    S.followed = new Map(r.threads.map((t) => [t.threadRootEventId, t]));
    S.followedList = r.threads;
    $("threads-badge").textContent = String(r.unreadThreadCount || "");
    $("threads-badge").hidden = !r.unreadThreadCount;
  } catch (e) { /* cosmetic */ }
  renderFollow();
}
let followTimer = null;
const loadFollowedSoon = () => { clearTimeout(followTimer); followTimer = setTimeout(loadFollowed, 300); };

function markThreadRead() {
  if (!S.thread || document.visibilityState !== "visible") return;
  api("chatto.api.v1.ThreadService/MarkThreadAsRead", { roomId: S.thread.roomId, threadRootEventId: S.thread.rootId })
    .then(loadFollowedSoon).catch(() => {});
}

// The threads one follows, newest reply first, with their unread replies.
$("threads-inbox").addEventListener("click", async () => {
  await loadFollowed();
  const list = el("ul", { class: "threads-list", dataset: { testid: "threads-list" } });
  for (const t of S.followedList || []) {
    const entry = S.rooms.get(t.roomId);
    await ensureUsers([t.rootMessage.actorId]);
    list.append(el("li", { dataset: { testid: "followed-thread" }, onclick: async () => {
      $("dialog").close();
      if (S.current !== t.roomId) await openRoom(t.roomId);
      openThread(t.roomId, t.threadRootEventId);
    } }, el("div", { class: "where muted", text: (entry ? roomTitle(entry) : "") + " · " + t.replyCount + (t.replyCount === 1 ? " reply" : " replies") }),
      el("div", { class: "what" }, el("strong", { text: userName(t.rootMessage.actorId) + ": " }), snippet(t.rootMessage.body, 80)),
      t.unreadCount ? el("span", { class: "badge unread-count", text: String(t.unreadCount) }) : ""));
  }
  if (!list.children.length) list.append(el("li", { class: "muted", text: "You follow no threads yet. Reply in one, or press Follow in its panel." }));
  dialog("Threads", [list], null);
});

function renderThread() {
  if (!S.thread) return;
  $("thread-root").replaceChildren(S.thread.root ? renderMessage(S.thread.root, true) : "");
  const box = $("thread-messages");
  box.replaceChildren(...S.thread.items.map((m) => renderMessage(m, true)));
  box.scrollTop = box.scrollHeight;
}

$("thread-close").addEventListener("click", () => { S.thread = null; $("thread").hidden = true; });
$("thread-composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("thread-input"), text = input.value;
  if (!text.trim() || !S.thread) return;
  if (!(await confirmBroad(S.thread.roomId, text))) return;
  input.value = "";
  try {
    const m = await send(S.thread.roomId, text, S.thread.rootId);
    addMessage(m);
  } catch (err) { input.value = text; alertLine(err.message); }
});

// ---------------------------------------------------------------- live events

function addMessage(m) {
  if (m.threadRootEventId) {
    if (S.thread && S.thread.rootId === m.threadRootEventId && !S.thread.items.some((x) => x.id === m.id)) {
      S.thread.items.push(m);
      renderThread();
    }
    return;
  }
  const t = S.timeline.get(m.roomId);
  if (t && !t.items.some((e) => e.id === m.id)) {
    mergeEvents(m.roomId, [{ id: m.id, createdAt: m.createdAt, actorId: m.actorId, cursor: m.cursor, messagePosted: { message: m } }], false);
    if (m.roomId === S.current) renderTimeline(false);
  }
}

function countUnread(m) {
  if (m.actorId === S.me.id || m.threadRootEventId) return;
  const x = S.rooms.get(m.roomId);
  if (!x) return;
  if (m.roomId === S.current && document.visibilityState === "visible") { markRead(); return; }
  x.unreadCount = (x.unreadCount || 0) + 1;
  if ((m.mentions || []).includes(S.me.id) || (m.mentionsAll && m.actorId !== S.me.id)) x.mentionCount = (x.mentionCount || 0) + 1;
  renderSidebar();
}

// Mark a room read a moment after its messages were shown (one request for a burst). The room is the one shown
// when it was asked for: switching rooms within that moment must not leave the first one unread. It is read up to
// the newest event shown then: what arrives after one has left the room stays unread.
const readTimers = new Map(); // room id -> pending timer
function markRead(id = S.current) {
  if (!id) return;
  const t = S.timeline.get(id), upto = t && t.items.length ? t.items[t.items.length - 1].id : "";
  clearTimeout(readTimers.get(id));
  readTimers.set(id, setTimeout(async () => {
    readTimers.delete(id);
    try {
      const r = await api("chatto.api.v1.RoomService/MarkRoomAsRead", upto ? { roomId: id, eventId: upto } : { roomId: id });
      const x = S.rooms.get(id);
      if (x) { x.unreadCount = r.unreadCount || 0; x.mentionCount = r.mentionCount || 0; renderSidebar(); }
    } catch (e) { /* not a member any more */ }
  }, 300));
}

document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") markRead(); });

async function onEvent(f) {
  if (f.cursor) S.cursor = f.cursor;
  switch (f.type) {
    case "message.created": {
      await ensureUsers([f.message.actorId]);
      // whoever just posted has stopped typing (their typing frame may still be on its way out)
      const rid = f.message.roomId, typing = S.typing.get(rid);
      if (typing && typing.some((t) => t.userId === f.message.actorId)) {
        S.typing.set(rid, typing.filter((t) => t.userId !== f.message.actorId));
        if (rid === S.current) renderTyping();
      }
      addMessage(f.message);
      countUnread(f.message);
      if (f.message.threadRootEventId) {
        if (S.thread && S.thread.rootId === f.message.threadRootEventId) markThreadRead();
        else loadFollowedSoon();
      }
      break;
    }
    case "message.updated":
    case "message.pinned":
    case "message.unpinned":
      // the realtime copy does not know which reactions are ours: keep ours from what we had
      replaceMessage(mergeMine(f.message));
      rerender();
      if (f.type !== "message.updated" && f.message.roomId === S.current && $("dialog").open && $("dialog").dataset.kind === "pins") showPins();
      break;
    case "message.deleted": {
      const t = S.timeline.get(f.roomId);
      const patch = (m) => ({ ...m, body: undefined, deletedAt: new Date().toISOString(), reactions: [] });
      if (t) for (const ev of t.items) if (ev.messagePosted && ev.messagePosted.message.id === f.eventId) ev.messagePosted.message = patch(ev.messagePosted.message);
      if (S.thread && S.thread.roomId === f.roomId) {
        S.thread.items = S.thread.items.map((m) => (m.id === f.eventId ? patch(m) : m));
        if (S.thread.root && S.thread.root.id === f.eventId) S.thread.root = patch(S.thread.root);
      }
      rerender();
      break;
    }
    case "reaction.added":
    case "reaction.removed":
      applyReaction(f);
      rerender();
      break;
    case "thread.updated": {
      const t = S.timeline.get(f.roomId);
      if (t) for (const ev of t.items) {
        const m = ev.messagePosted && ev.messagePosted.message;
        if (m && m.id === f.threadRootEventId) m.thread = { threadRootEventId: m.id, replyCount: f.replyCount, lastReplyAt: f.lastReplyAt };
      }
      if (f.roomId === S.current) renderTimeline(false);
      break;
    }
    case "member.joined":
    case "member.left":
    case "room.created":
    case "room.updated":
    case "room.archived":
      await loadRooms();
      if (f.roomId === S.current) {
        if (f.type === "member.left" && f.userId === S.me.id) { S.current = null; $("messages").replaceChildren(); $("room-name").textContent = ""; }
        else { await refreshCurrent(); }
      }
      break;
    case "call.started":
    case "call.participant_joined":
    case "call.participant_left":
    case "call.ended":
      await onCallFrame(f);
      break;
    case "read.updated": {
      const x = S.rooms.get(f.roomId);
      if (x) { await loadRooms(); }
      break;
    }
    case "typing":
      S.typing.set(f.roomId, f.users || []);
      if (f.roomId === S.current) renderTyping();
      break;
    case "notification.created":
      setBell(Number($("bell-badge").textContent || 0) + 1);
      chime(f.occurrence);
      if ($("dialog").open && $("dialog").dataset.kind === "inbox") showInbox();
      break;
    case "user.updated":
      // my account changed on another device (or this one): status, presence choice, name, picture
      if (f.user && S.me && f.user.id === S.me.id) { setMe(Object.assign({}, S.me, f.user)); sendStatus(); }
      break;
    case "presence":
      // the statuses of the users we show (see watchPresence), at most one frame a second; custom statuses ride along
      for (const u of f.users || []) {
        const known = S.users.get(u.userId);
        if (known && JSON.stringify(known.customStatus || null) !== JSON.stringify(u.customStatus || null)) {
          known.customStatus = u.customStatus;
          if (u.customStatus === undefined) delete known.customStatus;
          S.statusDirty = true;
        }
        S.presence.set(u.userId, u.status);
        for (const d of document.querySelectorAll('.dot[data-user="' + CSS.escape(u.userId) + '"]')) d.className = "dot " + u.status;
      }
      if (S.statusDirty) { S.statusDirty = false; rerender(); renderSidebar(); }
      break;
    case "session.terminated":
      S.cursor = null;
      location.reload();
      break;
    case "reset":
      await resync();
      break;
    default:
      break;
  }
}

function mergeMine(m) {
  let old = null;
  const t = S.timeline.get(m.roomId);
  if (t) for (const ev of t.items) if (ev.messagePosted && ev.messagePosted.message.id === m.id) old = ev.messagePosted.message;
  if (!old && S.thread) old = S.thread.items.find((x) => x.id === m.id) || (S.thread.root && S.thread.root.id === m.id ? S.thread.root : null);
  if (old) m.reactions = (m.reactions || []).map((r) => ({ ...r, hasReacted: (old.reactions || []).some((o) => o.emoji === r.emoji && o.hasReacted) }));
  // a pin frame of an old message may come without its body (the server did not keep it): the body is unchanged
  if (old && m.body === undefined && !m.deletedAt && old.body !== undefined) m.body = old.body;
  return m;
}

function applyReaction(f) {
  const fix = (m) => {
    if (!m || m.id !== f.eventId) return m;
    let rx = (m.reactions || []).filter((r) => r.emoji !== f.emoji);
    const prev = (m.reactions || []).find((r) => r.emoji === f.emoji);
    const mine = f.userId === S.me.id ? f.type === "reaction.added" : !!(prev && prev.hasReacted);
    if (f.count > 0) rx = rx.concat([{ emoji: f.emoji, count: f.count, hasReacted: mine }]);
    return { ...m, reactions: rx };
  };
  const t = S.timeline.get(f.roomId);
  if (t) for (const ev of t.items) if (ev.messagePosted) ev.messagePosted.message = fix(ev.messagePosted.message);
  if (S.thread && S.thread.roomId === f.roomId) {
    S.thread.items = S.thread.items.map(fix);
    S.thread.root = fix(S.thread.root);
  }
}

async function refreshCurrent() {
  if (!S.current) return;
  S.timeline.set(S.current, { items: [], hasOlder: true, loading: false });
  try { await loadPage(S.current, null); } catch (e) { /* left or hidden */ }
  renderTimeline(true);
}

async function resync() {
  // we missed too much: forget cached history and fetch what is shown again
  S.timeline.clear();
  await loadRooms();
  if (S.current && S.rooms.has(S.current)) await openRoom(S.current);
  if (S.thread) await openThread(S.thread.roomId, S.thread.rootId);
}

// ---------------------------------------------------------------- realtime connection

// The server sends presence only for the users a client says it shows: every rendered status dot (DM partners,
// message authors, members). Re-sent (debounced) when that set changes, and after every (re)connect.
let watchTimer = null;
function watchPresence(force) {
  clearTimeout(watchTimer);
  watchTimer = setTimeout(() => {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN || !S.wsReady) return;
    const me = S.me && S.me.id;
    const ids = [...new Set([...document.querySelectorAll(".dot[data-user]")].map((d) => d.dataset.user))]
      .filter((x) => x && x !== me).sort().slice(0, 1000);
    const key = ids.join(",");
    if (!force && key === S.watchKey) return;
    S.watchKey = key;
    S.ws.send(JSON.stringify({ type: "presence.watch", userIds: ids }));
  }, force ? 0 : 300);
}
new MutationObserver(() => watchPresence(false)).observe(document.body, { childList: true, subtree: true });

// ---------------------------------------------------------------- my presence

// What this device tells the server: the status chosen on the account (away, dnd) if any, else online while the
// person is here and away after 5 minutes without input or 10 s with the tab hidden (upstream's rules).
S.idle = false;
S.sentStatus = null;
function myStatus() {
  const pref = S.me && S.me.presencePreference;
  if (pref === "dnd" || pref === "away") return pref;
  return S.idle ? "away" : "online";
}
function sendStatus(force) {
  const st = myStatus();
  if (!S.ws || !S.wsReady || (!force && st === S.sentStatus)) return;
  S.sentStatus = st;
  S.ws.send(JSON.stringify({ type: "presence", status: st }));
  S.presence.set(S.me.id, st);
  for (const d of document.querySelectorAll('.dot[data-user="' + CSS.escape(S.me.id) + '"]')) d.className = "dot " + st;
}
let idleTimer = null, hiddenTimer = null;
function active() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => { S.idle = true; sendStatus(); }, 5 * 60 * 1000);
  if (S.idle && document.visibilityState === "visible") { S.idle = false; sendStatus(); }
}
for (const ev of ["keydown", "pointerdown", "pointermove", "wheel", "focus"]) window.addEventListener(ev, active, { passive: true });
document.addEventListener("visibilitychange", () => {
  clearTimeout(hiddenTimer);
  if (document.visibilityState === "hidden") hiddenTimer = setTimeout(() => { S.idle = true; sendStatus(); }, 10000);
  else active();
});
active();

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/realtime";
  const ws = new WebSocket(url);
  S.ws = ws;
  S.wsReady = false;
  let ready = false;
  ws.onopen = () => {
    const hello = { type: "hello" };
    if (S.cursor) hello.resumeFrom = S.cursor;
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = async (m) => {
    let f;
    try { f = JSON.parse(m.data); } catch (e) { return; }
    if (f.type === "ready") {
      const resumed = !!S.cursor;
      ready = true;
      S.wsReady = true;
      watchPresence(true);
      sendStatus(true);
      S.wsDelay = 500;
      if (!resumed) S.cursor = f.cursor;
      banner("");
      document.body.dataset.connected = "true";
      return;
    }
    await onEvent(f);
  };
  ws.onclose = () => {
    document.body.dataset.connected = "false";
    if (S.ws !== ws) return;
    banner(ready ? "Connection lost. Reconnecting…" : "Cannot reach the server. Retrying…");
    setTimeout(connect, S.wsDelay);
    S.wsDelay = Math.min(S.wsDelay * 2, 10000);
  };
}

// ---------------------------------------------------------------- dialogs

function dialog(title, body, onOk, okText = "OK") {
  const d = $("dialog");
  if (d.open) d.close(); // one dialog at a time: a new one (or a refreshed one) replaces it
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...body);
  $("dialog-error").textContent = "";
  $("dialog-ok").textContent = okText;
  $("dialog-ok").hidden = !onOk;
  $("dialog-cancel").textContent = onOk ? "Cancel" : "Close";
  $("dialog-ok").onclick = async (e) => {
    e.preventDefault();
    try { await onOk(); d.close(); } catch (err) { $("dialog-error").textContent = err.message; }
  };
  $("dialog-cancel").onclick = () => d.close();
  d.showModal();
}

$("new-room").addEventListener("click", () => {
  const name = el("input", { id: "new-room-name", maxlength: "80", "aria-label": "Room name" });
  const desc = el("input", { id: "new-room-desc", maxlength: "500", "aria-label": "Description" });
  const priv = el("input", { id: "new-room-private", type: "checkbox" });
  dialog("Create a room", [
    el("label", {}, "Name", name), el("label", {}, "Description (optional)", desc),
    el("label", {}, priv, " Private (only people you add can see it)"),
  ], async () => {
    const r = await api("chatto.api.v1.RoomService/CreateRoom",
      { name: name.value, description: desc.value, visibility: priv.checked ? "private" : "public" });
    await loadRooms();
    await openRoom(r.room.id);
  }, "Create");
  name.focus();
});

$("browse").addEventListener("click", async () => {
  await loadRooms();
  const list = el("ul", { class: "pick-list" });
  const open = [...S.rooms.values()].filter((x) => !x.joined && !x.room.isDm);
  if (!open.length) list.append(el("li", { class: "muted", text: "No other public rooms yet." }));
  for (const x of open) {
    list.append(el("li", {}, el("span", { text: "#" + x.room.name + (x.room.archived ? " (archived)" : "") }),
      x.room.archived ? null : el("button", { type: "button", dataset: { join: x.room.id }, text: "Join", onclick: async () => {
        await api("chatto.api.v1.RoomService/JoinRoom", { roomId: x.room.id });
        $("dialog").close();
        await loadRooms();
        await openRoom(x.room.id);
      } })));
  }
  dialog("Browse rooms", [list], null);
});

$("new-dm").addEventListener("click", async () => {
  await loadAllUsers();
  const list = el("ul", { class: "pick-list" });
  for (const u of [...S.users.values()].filter((u) => u.id !== S.me.id && !u.deleted)) {
    list.append(el("li", {}, el("span", { text: (u.displayName || u.login) + " @" + u.login }),
      el("button", { type: "button", dataset: { dm: u.login }, text: "Message", onclick: async () => {
        const r = await api("chatto.api.v1.RoomService/StartDM", { participantIds: [u.id] });
        $("dialog").close();
        await loadRooms();
        await openRoom(r.room.id);
      } })));
  }
  dialog("New direct message", [list], null);
});

function renderMe() {
  $("me").replaceChildren(...[avatar(S.me.id, "avatar small"), el("span", { class: "dot " + (S.presence.get(S.me.id) || "online"), dataset: { user: S.me.id } }),
    el("span", { text: S.me.displayName || S.me.login }), statusBadge(S.me.id)].filter(Boolean));
}

function setMe(user) {
  S.me = user;
  S.users.set(user.id, user);
  renderMe();
  renderSidebar();
  rerender();
}

// Profile: display name and picture (resized to 256 x 256 by the server).
$("me").addEventListener("click", () => {
  const name = el("input", { id: "profile-name", maxlength: "64", value: S.me.displayName || "", "aria-label": "Display name" });
  const pic = el("div", { class: "profile-pic" }, avatar(S.me.id, "avatar large"));
  const file = el("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", id: "avatar-file", hidden: "" });
  const status = el("span", { class: "muted", "aria-live": "polite" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    status.textContent = "Uploading…";
    try {
      const bytes = new Uint8Array(await f.arrayBuffer());
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      const r = await api("chatto.api.v1.MyAccountService/UploadAvatar", { image: { image: btoa(bin), filename: f.name } });
      setMe(r.user);
      pic.replaceChildren(avatar(S.me.id, "avatar large"));
      status.textContent = "Picture updated.";
    } catch (e) { status.textContent = e.message; }
    file.value = "";
  });
  const remove = el("button", { type: "button", id: "avatar-remove", text: "Remove picture", onclick: async () => {
    try {
      setMe((await api("chatto.api.v1.MyAccountService/DeleteAvatar")).user);
      pic.replaceChildren(avatar(S.me.id, "avatar large"));
      status.textContent = "Picture removed.";
    } catch (e) { status.textContent = e.message; }
  } });
  // custom status: presets (upstream's), or one's own emoji and words, for a while or until cleared
  const cs = S.me.customStatus && !(S.me.customStatus.expiresAt && new Date(S.me.customStatus.expiresAt) <= new Date()) ? S.me.customStatus : null;
  const emoji = el("input", { id: "status-emoji", maxlength: "16", value: cs ? cs.emoji : "", "aria-label": "Status emoji", class: "status-emoji" });
  const words = el("input", { id: "status-text", maxlength: "100", value: cs ? cs.text : "", "aria-label": "Status text", placeholder: "What's your status?" });
  const endOfDay = () => { const d = new Date(); d.setHours(23, 59, 0, 0); return d; };
  const expiry = el("select", { id: "status-expiry", "aria-label": "Clear the status after" },
    ...[["", "Don't clear"], ["30", "30 minutes"], ["60", "1 hour"], ["240", "4 hours"], ["today", "Today"], ["week", "This week"]]
      .map(([v, t]) => el("option", { value: v, text: t })));
  const presets = el("div", { class: "status-presets" }, ...[["🍔", "Lunch", "60"], ["📅", "In a meeting", "60"], ["🤒", "Out sick", "today"],
    ["🌴", "On holiday", ""], ["🏠", "Working remotely", "today"]].map(([e, t, x]) =>
    el("button", { type: "button", class: "preset", text: e + " " + t, onclick: () => { emoji.value = e; words.value = t; expiry.value = x; } })));
  const clearStatus = el("button", { type: "button", id: "status-clear", text: "Clear status", onclick: async () => {
    try { await api("chatto.api.v1.MyAccountService/DeleteCustomStatus"); const me = Object.assign({}, S.me); delete me.customStatus; setMe(me); emoji.value = words.value = ""; status.textContent = "Status cleared."; }
    catch (e) { status.textContent = e.message; }
  } });
  // password: the current one and a new one; other sessions stay signed in unless the server says otherwise
  const curPw = el("input", { type: "password", id: "pw-current", autocomplete: "current-password", "aria-label": "Current password" });
  const newPw = el("input", { type: "password", id: "pw-new", autocomplete: "new-password", minlength: "8", "aria-label": "New password" });
  const pwStatus = el("span", { class: "muted", "aria-live": "polite" });
  const passwordBox = el("details", { class: "password-box" }, el("summary", { text: "Change password" }),
    el("label", {}, "Current password", curPw), el("label", {}, "New password (at least 8 characters)", newPw),
    el("button", { type: "button", id: "pw-change", text: "Change password", onclick: async () => {
      try {
        await api("chatto.api.v1.MyAccountService/UpdatePassword", { currentPassword: curPw.value, newPassword: newPw.value });
        curPw.value = newPw.value = "";
        pwStatus.textContent = "Password changed.";
      } catch (e) { pwStatus.textContent = e.message; }
    } }), " ", pwStatus);
  const pref = S.me.presencePreference || "auto";
  const presenceChoice = el("fieldset", { class: "presence-choice" }, el("legend", { text: "Presence" }),
    ...[["auto", "Automatic (away when idle)"], ["away", "Appear away"], ["dnd", "Do not disturb"]].map(([v, t]) =>
      el("label", {}, el("input", { type: "radio", name: "presence", value: v, ...(v === pref ? { checked: "" } : {}) }), " " + t)));
  dialog("Your profile", [
    el("div", { class: "profile-row" }, pic, el("div", {},
      el("button", { type: "button", id: "avatar-upload", text: "Upload picture…", onclick: () => file.click() }), " ", remove, file,
      el("div", {}, status))),
    el("label", {}, "Display name", name),
    el("div", { class: "status-row" }, el("span", { class: "label-text", text: "Status" }), emoji, words, expiry),
    presets, clearStatus, presenceChoice, passwordBox,
  ], async () => {
    if (name.value.trim() !== (S.me.displayName || "")) {
      setMe((await api("chatto.api.v1.MyAccountService/UpdateProfile", { displayName: name.value })).user);
    }
    if (emoji.value.trim() || words.value.trim()) {
      const body = { emoji: emoji.value.trim(), text: words.value.trim() };
      const v = expiry.value;
      if (v === "today") body.expiresAt = endOfDay().toISOString();
      else if (v === "week") { const d = endOfDay(); d.setDate(d.getDate() + ((7 - d.getDay()) % 7)); body.expiresAt = d.toISOString(); }
      else if (v) body.expiresAt = new Date(Date.now() + Number(v) * 60000).toISOString();
      const r = await api("chatto.api.v1.MyAccountService/UpdateCustomStatus", body);
      const me = Object.assign({}, S.me);
      if (r.status) me.customStatus = r.status; else delete me.customStatus;
      setMe(me);
    }
    const chosen = presenceChoice.querySelector("input:checked").value;
    if (chosen !== pref) {
      const r = await api("chatto.api.v1.MyAccountService/UpdatePresence", { status: chosen === "auto" ? "online" : chosen, userSelected: true });
      setMe(Object.assign({}, S.me, r.user));
      sendStatus();
    }
  }, "Save");
});

$("emoji-button").addEventListener("click", async () => {
  const input = $("composer-input"), at = input.selectionStart ?? input.value.length, end = input.selectionEnd ?? at;
  const e = await pickEmoji("Insert an emoji");
  if (!e) { input.focus(); return; }
  input.value = input.value.slice(0, at) + e + input.value.slice(end);
  input.focus();
  input.setSelectionRange(at + e.length, at + e.length);
});

// Who is in the room, with presence, custom status and role (RoomService/ListMembers).
$("room-members").addEventListener("click", async () => {
  const roomId = S.current;
  if (!roomId) return;
  const list = el("ul", { class: "member-list", dataset: { testid: "member-list" } });
  try {
    const r = await api("chatto.api.v1.RoomService/ListMembers", { roomId });
    await ensureUsers(r.members.map((m) => m.userId));
    const rank = { owner: 0, admin: 1, member: 2 };
    const order = { online: 0, dnd: 1, away: 2, offline: 3 };
    const members = r.members.slice().sort((a, b) => (order[S.presence.get(a.userId) || "offline"] - order[S.presence.get(b.userId) || "offline"]) ||
      (rank[a.role] ?? 3) - (rank[b.role] ?? 3) || userName(a.userId).localeCompare(userName(b.userId)));
    for (const m of members) {
      const u = S.users.get(m.userId) || {};
      list.append(el("li", { dataset: { testid: "member", user: m.userId } }, avatar(m.userId, "avatar small"),
        el("span", { class: "dot " + (S.presence.get(m.userId) || "offline"), dataset: { user: m.userId } }),
        el("span", { class: "who", text: userName(m.userId) }), el("span", { class: "muted", text: u.login ? "@" + u.login : "" }),
        statusBadge(m.userId) || "", m.role && m.role !== "member" ? el("span", { class: "role", text: m.role }) : ""));
    }
  } catch (e) { list.append(el("li", { class: "muted", text: e.message })); }
  dialog("Members of " + $("room-name").textContent, [list], null);
  watchPresence(true); // the people listed are shown now: their presence is wanted
});

// The room's pinned messages, newest pin first (RoomService/ListPinnedMessages).
async function showPins() {
  const roomId = S.current;
  if (!roomId) return;
  const list = el("div", { class: "pins-list", dataset: { testid: "pins-list" } });
  try {
    const r = await api("chatto.api.v1.RoomService/ListPinnedMessages", { roomId, page: { limit: 100 } });
    await ensureUsers((r.pinnedMessages || []).map((p) => p.message.actorId));
    for (const p of r.pinnedMessages || []) {
      const item = renderMessage(p.message, true);
      item.querySelector(".actions")?.remove();
      item.addEventListener("click", () => { $("dialog").close(); jumpTo(p.message); });
      list.append(item);
    }
    if (!(r.pinnedMessages || []).length) list.append(el("p", { class: "muted", text: "Nothing is pinned here yet. Room admins can pin a message from its toolbar." }));
  } catch (e) { list.append(el("p", { class: "muted", text: e.message })); }
  dialog("Pinned in " + $("room-name").textContent, [list], null);
  $("dialog").dataset.kind = "pins";
  $("dialog").addEventListener("close", () => { delete $("dialog").dataset.kind; }, { once: true });
}
$("room-pins").addEventListener("click", showPins);

// ---------------------------------------------------------------- reply-quote (inReplyTo, in the room itself)

S.quoted = new Map(); // message id -> message, for quotes of messages not in the loaded history

function findLoaded(roomId, id) {
  const t = S.timeline.get(roomId);
  if (t) for (const ev of t.items) { const m = itemOf(ev); if (m && m.id === id) return m; }
  return S.quoted.get(id) || null;
}

function snippet(text, n = 90) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > n ? flat.slice(0, n - 1) + "…" : flat;
}

// "↩ Alice: the original's first words" above a reply; a click jumps to the original.
function quoteOf(roomId, id) {
  const q = el("button", { type: "button", class: "quote", dataset: { testid: "quote" } });
  const fill = (o) => {
    q.replaceChildren(el("span", { class: "quote-author", text: userName(o.actorId) }),
      el("span", { class: "quote-text", text: o.deletedAt ? "(deleted)" : snippet(o.body) || (o.attachments || []).map((a) => a.filename).join(", ") }));
    q.onclick = () => jumpTo(o);
  };
  const o = findLoaded(roomId, id);
  if (o) fill(o);
  else {
    q.textContent = "Reply to an earlier message";
    api("chatto.api.v1.MessageService/GetMessage", { roomId, eventId: id }).then(async (r) => {
      S.quoted.set(id, r.message);
      await ensureUsers([r.message.actorId]);
      fill(r.message);
    }).catch(() => { q.textContent = "Reply to a message that is gone"; });
  }
  return q;
}

function startReply(m) {
  S.replyTo = { roomId: m.roomId, id: m.id };
  $("replying-text").replaceChildren("Replying to ", el("strong", { text: userName(m.actorId) }), ": " + snippet(m.body, 60));
  $("replying").hidden = false;
  $("composer-input").focus();
}

function cancelReply() {
  S.replyTo = null;
  $("replying").hidden = true;
}
$("replying-cancel").addEventListener("click", cancelReply);

// Scroll to a message of the open room (a thread reply opens its thread), highlighting it a moment.
function jumpTo(m) {
  if (m.threadRootEventId) { openThread(m.roomId, m.threadRootEventId); return; }
  const a = $("messages").querySelector('article.msg[data-id="' + CSS.escape(m.id) + '"]');
  if (!a) { alertLine("That message is further back in the history: scroll up to load it."); return; }
  a.scrollIntoView({ block: "center" });
  a.classList.add("flash");
  setTimeout(() => a.classList.remove("flash"), 1600);
}

// The room's files, newest first (RoomService/ListRoomAttachments), 50 at a time.
$("room-files").addEventListener("click", async () => {
  const roomId = S.current;
  if (!roomId) return;
  const list = el("ul", { class: "files-list", dataset: { testid: "files-list" } });
  const more = el("button", { type: "button", text: "Show more", hidden: "" });
  let offset = 0;
  const page = async () => {
    const r = await api("chatto.api.v1.RoomService/ListRoomAttachments", { roomId, page: { limit: 50, offset } });
    for (const f of r.attachments || []) {
      const a = f.attachment, url = a.assetUrl && a.assetUrl.url, thumb = a.thumbnailAssetUrl && a.thumbnailAssetUrl.url;
      const ext = (a.filename.split(".").pop() || "file").slice(0, 4).toUpperCase();
      list.append(el("li", { dataset: { testid: "file-item" } },
        thumb ? el("img", { class: "thumb", src: thumb, alt: "", loading: "lazy" }) : el("span", { class: "icon-box", text: ext }),
        el("span", { class: "what" }, el("a", { href: url, download: a.filename, text: a.filename }),
          el("span", { class: "muted", text: fmtSize(a.size) + " · " + new Date(f.createdAt).toLocaleString() }))));
    }
    offset += (r.attachments || []).length;
    more.hidden = !(r.page && r.page.hasMore);
    if (!offset) list.append(el("li", { class: "muted", text: "No files have been shared here yet." }));
  };
  more.addEventListener("click", () => page().catch((e) => { $("dialog-error").textContent = e.message; }));
  dialog("Files in " + $("room-name").textContent, [list, more], null);
  try { await page(); } catch (e) { $("dialog-error").textContent = e.message; }
});

$("menu").addEventListener("click", () => $("app").classList.toggle("show-side"));
// on a phone, a tap beside the open drawer (on its backdrop, which is the app's own ::after) closes it
$("app").addEventListener("click", (e) => { if (e.target === $("app")) $("app").classList.remove("show-side"); });

$("theme").addEventListener("click", () => {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
  localStorage.setItem("chatto-theme", root.dataset.theme);
});

// ---------------------------------------------------------------- message search (#17)
// Everything of the search box lives here: the dialog (Ctrl/Cmd+K or /), filter chips that edit the query text,
// results with highlighted snippets (the text is escaped; only the server's \x02...\x03 markers become <mark>), and
// the jump to a result: history loaded around the message, which is scrolled to and highlighted.

const SEARCH = { seq: 0, cursor: "", query: "", timer: null };
const SEARCH_CHIPS = [
  { label: "In this room", add: () => { const x = S.rooms.get(S.current); return x && !x.room.isDm ? searchInFilter(x.room.name) : ""; } },
  { label: "From me", add: () => "from:@" + S.me.login },
  { label: "Has file", add: () => "has:attachment" },
  { label: "In threads", add: () => "is:thread" },
  { label: "Last 7 days", add: () => "after:" + new Date(Date.now() - 8 * 86400000).toISOString().slice(0, 10) },
];

function searchInFilter(name) { return /\s|"/.test(name) ? 'in:"' + name.replace(/"/g, "") + '"' : "in:#" + name; }

function searchSnippet(text) {
  // escape first, then turn only the markers into <mark>: nothing from a message can become markup
  const esc = escapeHtml(text || "");
  const span = el("span", { class: "snippet" });
  span.innerHTML = esc.replace(/\x02/g, "<mark>").replace(/\x03/g, "</mark>");
  return span;
}

function renderSearchChips() {
  const box = $("search-chips"), q = $("search-input").value;
  box.replaceChildren(...SEARCH_CHIPS.map((c) => {
    const f = c.add();
    const on = !!f && q.split(/\s+/).includes(f);
    const b = el("button", { type: "button", text: c.label, "aria-pressed": on ? "true" : "false",
      dataset: { testid: "search-chip" }, onclick: () => {
        const input = $("search-input");
        const parts = input.value.split(/\s+/).filter((p) => p && p !== f);
        if (!on) parts.push(f);
        input.value = parts.join(" ") + (on ? "" : " ");
        input.focus();
        runSearch(true);
      } });
    b.hidden = !f;
    return b;
  }));
}

function renderSearchResult(r) {
  const m = r.message;
  const where = r.directMessage ? "Direct message" : "#" + (r.roomName || r.roomId);
  const li = el("li", { tabindex: "0", dataset: { testid: "search-result", id: r.eventId, room: r.roomId } },
    el("div", { class: "where muted" },
      el("strong", { text: userName(m.actorId) }), el("span", { text: " in " + where + " · " }),
      el("time", { datetime: m.createdAt, text: new Date(m.createdAt).toLocaleString() }),
      r.threadRootEventId ? el("span", { text: " · in a thread" }) : ""),
    searchSnippet(r.snippet || m.body));
  const go = () => jumpToMessage(r.roomId, r.eventId, r.threadRootEventId).catch((e) => banner(e.message));
  li.addEventListener("click", go);
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); go(); } });
  return li;
}

async function runSearch(fresh) {
  const query = $("search-input").value.trim();
  const seq = ++SEARCH.seq, status = $("search-status"), list = $("search-results");
  renderSearchChips();
  if (fresh) { SEARCH.cursor = ""; list.replaceChildren(); $("search-more").hidden = true; }
  if (!query) { status.textContent = ""; status.classList.remove("error"); return; }
  status.textContent = "Searching…";
  status.classList.remove("error");
  try {
    const r = await api("chatto.api.v1.MessageSearchService/SearchMessages", { query, pageSize: 20, cursor: SEARCH.cursor });
    if (seq !== SEARCH.seq) return; // a newer search was started meanwhile
    for (const [id, u] of Object.entries((r.includes && r.includes.users) || {})) if (!S.users.has(id)) S.users.set(id, u);
    list.append(...r.results.map(renderSearchResult));
    SEARCH.cursor = r.nextCursor || "";
    $("search-more").hidden = !SEARCH.cursor;
    status.textContent = list.children.length ? "" : "No messages match.";
  } catch (e) {
    if (seq !== SEARCH.seq) return;
    status.textContent = e.message; // the server names the problem ("unbalanced quote", "unknown filter ...")
    status.classList.add("error");
  }
}

function openSearch() {
  const d = $("search-dialog");
  if (!d.open) d.showModal();
  renderSearchChips();
  $("search-input").focus();
  $("search-input").select();
}

async function jumpToMessage(roomId, eventId, threadRoot) {
  $("search-dialog").close();
  if (threadRoot) {
    await openRoom(roomId);
    await openThread(roomId, threadRoot);
    searchHighlight($("thread-messages"), eventId);
    return;
  }
  // the history around the message replaces what was loaded of that room (older and newer pages load on scroll
  // and on reopening)
  const r = await api("chatto.api.v1.RoomService/GetRoomEventsAround", { roomId, eventId, limit: 50 });
  for (const [id, u] of Object.entries(r.page.includes.users || {})) if (!S.users.has(id) || !S.users.get(id).login) S.users.set(id, u);
  S.timeline.set(roomId, { items: r.page.events.slice().sort((a, b) => Number(a.cursor) - Number(b.cursor)),
    hasOlder: r.page.hasOlder, loading: false, aroundSearch: "opening" });
  await openRoom(roomId);
  searchHighlight($("messages"), eventId);
  // a later visit shows the newest messages again, when this page did not reach them
  const t = S.timeline.get(roomId);
  if (t) t.aroundSearch = r.page.hasNewer ? true : undefined;
}

function searchHighlight(box, id) {
  const node = box.querySelector('article.msg[data-id="' + CSS.escape(id) + '"]');
  if (!node) return;
  node.classList.add("search-hit");
  node.scrollIntoView({ block: "center" });
  setTimeout(() => node.classList.remove("search-hit"), 4000);
}

$("search-open").addEventListener("click", openSearch);
// Escape closes at once (a search field would first only clear itself)
$("search-input").addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); $("search-dialog").close(); } });
$("search-close").addEventListener("click", () => $("search-dialog").close());
$("search-more").addEventListener("click", () => runSearch(false));
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(SEARCH.timer); runSearch(true); });
$("search-input").addEventListener("input", () => { clearTimeout(SEARCH.timer); SEARCH.timer = setTimeout(() => runSearch(true), 250); });
window.addEventListener("keydown", (e) => {
  if ($("app").hidden) return;
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName) ||
    (document.activeElement && document.activeElement.isContentEditable);
  if ((e.key === "k" || e.key === "K") && (e.ctrlKey || e.metaKey) && !e.altKey) { e.preventDefault(); openSearch(); }
  else if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); openSearch(); }
});

// ---------------------------------------------------------------- start

// ---------------------------------------------------------------- calls (LiveKit)
// Chatto keeps the call state (who started it, who is in it) and shows it whatever happens to the media: the media
// goes through LiveKit with the vendored livekit-client, loaded only when a call is joined. If LiveKit cannot be
// reached, the call still shows here, with a note that the audio did not connect.

S.livekitUrl = null; // set when calls are enabled on this server
S.lk = null;         // {roomId, room: LivekitClient.Room | null}

async function loadCallConfig() {
  try {
    const r = await api("chatto.api.v1.ServerService/GetRuntimeConfig");
    S.livekitUrl = (r.runtime && r.runtime.livekitUrl) || null;
  } catch (e) { S.livekitUrl = null; }
  renderCall();
}

function callIndicator(call) {
  const n = (call.participants || []).length;
  return el("span", { class: "call-live", title: "A call is live (" + n + " in it)", dataset: { testid: "call-live" },
    text: "\u25cf " + n });
}

function roomCall(roomId) {
  const x = S.rooms.get(roomId);
  return x && x.room.activeCall ? x.room.activeCall : null;
}

function inCall(call) {
  return !!(call && S.me && (call.participants || []).some((p) => p.userId === S.me.id));
}

function renderCall() {
  const btn = $("call-button"), bar = $("call-bar");
  const x = S.current ? S.rooms.get(S.current) : null;
  const call = S.current ? roomCall(S.current) : null;
  btn.hidden = !S.livekitUrl || !x || !x.joined || (x.room.archived && !call);
  const mine = inCall(call);
  $("call-button-text").textContent = mine ? "Leave call" : call ? "Join call" : "Start call";
  btn.classList.toggle("in-call", mine);
  bar.hidden = !call;
  if (!call) return;
  const names = (call.participants || []).map((p) => userName(p.userId));
  $("call-people").textContent = "In the call: " + (names.length ? names.join(", ") : "nobody yet");
  const media = S.lk && S.lk.roomId === S.current ? S.lk.state : "";
  $("call-media").textContent = media ? " \u00b7 " + media : "";
}

async function onCallFrame(f) {
  const x = S.rooms.get(f.roomId);
  if (x) {
    x.room.activeCall = f.call ? {
      callId: f.call.callId, startedAt: f.call.startedAt,
      participants: (f.call.participants || []).map((p) => ({ userId: p.user.id, joinedAt: p.joinedAt })),
    } : undefined;
    if (f.call) await ensureUsers(x.room.activeCall.participants.map((p) => p.userId));
  }
  if (f.type === "call.ended" && S.lk && S.lk.roomId === f.roomId) leaveMedia();
  renderSidebar();
  if (f.roomId === S.current) {
    renderCall();
    if (f.type === "call.started" || f.type === "call.ended") await refreshCurrent();
  }
}

let livekitLoading = null;
function loadLivekit() {
  if (window.LivekitClient) return Promise.resolve(window.LivekitClient);
  if (!livekitLoading) {
    livekitLoading = new Promise((resolve, reject) => {
      const meta = document.querySelector('meta[name="livekit-client"]');
      const s = el("script", { src: meta ? meta.content : "/static/vendor/livekit-client/livekit-client.umd.js" });
      s.onload = () => (window.LivekitClient ? resolve(window.LivekitClient) : reject(new Error("livekit-client did not load")));
      s.onerror = () => { livekitLoading = null; reject(new Error("livekit-client could not be loaded")); };
      document.head.append(s);
    });
  }
  return livekitLoading;
}

function setMedia(roomId, state) {
  if (S.lk && S.lk.roomId === roomId) S.lk.state = state;
  if (roomId === S.current) renderCall();
}

async function joinMedia(roomId) {
  leaveMedia();
  S.lk = { roomId, room: null, state: "connecting audio\u2026" };
  renderCall();
  let tok;
  try {
    tok = await api("chatto.api.v1.VoiceCallService/GetCallToken", { roomId });
    S.lk.token = tok;
    const LK = await loadLivekit();
    if (!S.lk || S.lk.roomId !== roomId) return;
    const room = new LK.Room({ adaptiveStream: true, dynacast: true });
    S.lk.room = room;
    room.on(LK.RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === "audio") document.body.append(Object.assign(track.attach(), { hidden: true }));
    });
    room.on(LK.RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((e) => e.remove()));
    room.on(LK.RoomEvent.Disconnected, () => setMedia(roomId, "audio disconnected"));
    await room.connect(tok.url || S.livekitUrl, tok.token);
    setMedia(roomId, "audio connected");
    try { await room.localParticipant.setMicrophoneEnabled(true); } catch (e) { setMedia(roomId, "audio connected, microphone off"); }
  } catch (e) {
    // no LiveKit reachable (or no token): the call state from Chatto still shows
    setMedia(roomId, "audio not connected (" + (e && e.message ? e.message.slice(0, 80) : "LiveKit unreachable") + ")");
  }
}

function leaveMedia() {
  if (!S.lk) return;
  const { room } = S.lk;
  S.lk = null;
  if (room) { try { room.disconnect(); } catch (e) { /* already gone */ } }
  for (const a of document.querySelectorAll("body > audio")) a.remove();
}

async function toggleCall() {
  const roomId = S.current;
  if (!roomId) return;
  const call = roomCall(roomId);
  try {
    if (inCall(call)) {
      leaveMedia();
      await api("chatto.api.v1.VoiceCallService/LeaveCall", { roomId });
    } else {
      const r = await api("chatto.api.v1.VoiceCallService/JoinCall", { roomId });
      if (!r.joined) { alertLine("Calls are not enabled on this server."); return; }
      // the frame may still be on its way: show ourselves in the call at once
      const x = S.rooms.get(roomId);
      if (x && (!x.room.activeCall || x.room.activeCall.callId !== r.callId)) x.room.activeCall = { callId: r.callId, participants: [] };
      if (x && !inCall(x.room.activeCall)) x.room.activeCall.participants.push({ userId: S.me.id });
      renderSidebar();
      renderCall();
      joinMedia(roomId);
    }
  } catch (e) {
    alertLine("Call: " + e.message);
  }
}

$("call-button").addEventListener("click", toggleCall);
window.addEventListener("pagehide", () => leaveMedia());

async function start() {
  $("auth").hidden = true;
  $("app").hidden = false;
  try {
    const info = await api("chatto.discovery.v1.ServerDiscoveryService/GetServer");
    $("server-name").textContent = info.name;
    document.title = info.name;
  } catch (e) { /* cosmetic */ }
  S.users.set(S.me.id, S.me);
  loadCallConfig();
  renderMe();
  await loadAllUsers();
  await loadRooms();
  loadFollowed();
  loadBell();
  // the PWA's service worker: home-screen install and (with Web Push) notifications; it caches nothing
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  pushRefresh();
  connect();
  const wanted = decodeURIComponent((location.hash.match(/^#\/room\/(.+)$/) || [])[1] || "");
  const first = S.rooms.has(wanted) ? wanted : S.rooms.has("general") ? "general" : [...S.rooms.keys()][0];
  if (first) await openRoom(first);
}

composerKeys($("composer-input"), true);
composerKeys($("thread-input"), false);
if (localStorage.getItem("chatto-theme")) document.documentElement.dataset.theme = localStorage.getItem("chatto-theme");

(async () => {
  try {
    S.me = (await api("chatto.api.v1.MyAccountService/GetMyAccount")).user;
    await start();
  } catch (e) {
    setAuthMode(false);
    showAuth();
  }
})();
