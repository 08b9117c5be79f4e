// The status page: every service, live from the change feed. It lists the
// services once (noting the feed's X-Last-Seq), reads each one's last 24
// hours from /uptime, then follows /elkservice/stream from that Seq. The
// browser's EventSource reconnects by itself and resumes with Last-Event-ID;
// if the feed cannot go on from there (410: pruned that far back, or a cursor
// from a database made afresh), the page lists again.
"use strict";

const DAY = 24 * 3600 * 1000;
// A watched service is confirmed every 30 s (the watcher's default heartbeat),
// and the writer marks the services of a silent watcher `unknown` after 90 s.
// Not checked for longer than this, a service's row is old news that nothing
// has marked: the broker or the writer itself may be gone.
const LATE = 3 * 60 * 1000;
const STATUSES = ["normal", "degraded", "down", "starting", "unknown"];
const services = new Map(); // Id -> { row, segments: [{status, from, to|null}], card }
const grid = document.getElementById("services");
const filter = document.getElementById("filter");
let source = null;

function setLive(state, text) {
  const live = document.getElementById("live");
  live.dataset.live = state;
  document.getElementById("live-text").textContent = text;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function isLate(row) {
  return !!row.LastCheckedAt && Date.now() - Date.parse(row.LastCheckedAt) > LATE;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The last 24 hours, cut to the window, as [{status, from, to}] in ms.
function windowed(segments) {
  const now = Date.now(), start = now - DAY;
  return segments
    .map((s) => ({ status: s.status, from: Math.max(s.from, start), to: s.to === null ? now : s.to }))
    .filter((s) => s.to > s.from);
}

function uptime(segments) {
  let normal = 0, total = 0;
  for (const s of windowed(segments)) {
    total += s.to - s.from;
    if (s.status === "normal") normal += s.to - s.from;
  }
  return total > 0 ? normal / total : null;
}

function render(entry) {
  const { row, segments } = entry;
  let card = entry.card;
  if (!card) {
    card = el("article", "card");
    entry.card = card;
    grid.appendChild(card);
  }
  const late = isLate(row);
  card.dataset.service = row.Name;
  card.dataset.status = row.Status;
  card.dataset.late = String(late);
  card.replaceChildren();
  const top = el("div", "top");
  top.append(el("span", "name", row.Name), el("span", "pill", row.Status));
  const facts = el("div", "facts");
  const fact = (label, value, cls) => {
    const f = el("span", cls);
    f.append(`${label} `, el("b", "", value));
    return f;
  };
  const ratio = uptime(segments);
  facts.append(
    fact("Running", row.Running ? "yes" : "no"),
    fact("Failures", String(row.FailedCount)),
    fact("Changed", ago(row.StatusChangedAt)),
    fact("24 h", ratio === null ? "–" : `${(ratio * 100).toFixed(ratio === 1 ? 0 : 2)} %`),
  );
  // Only for a watched service: a row kept through the API is never checked.
  if (row.LastCheckedAt) {
    const checked = fact("Checked", ago(row.LastCheckedAt), "checked");
    if (late) checked.title = "No observation for over 3 min: is the watcher, the broker or the writer running?";
    facts.append(checked);
  }
  const bar = el("div", "timeline");
  bar.title = "The last 24 hours";
  const now = Date.now();
  for (const s of windowed(segments)) {
    const part = el("span", s.status);
    part.style.width = `${((s.to - s.from) / DAY) * 100}%`;
    part.title = `${s.status} from ${new Date(s.from).toLocaleString()} to ${s.to >= now - 1000 ? "now" : new Date(s.to).toLocaleString()}`;
    bar.appendChild(part);
  }
  const axis = el("div", "axis");
  axis.append(el("span", "", "24 h ago"), el("span", "", "now"));
  card.append(top, facts);
  if (row.Detail) {
    const detail = el("div", "detail", row.Detail);
    detail.title = row.Detail;
    card.append(detail);
  }
  card.append(bar, axis);
  applyFilter(card);
}

function applyFilter(card) {
  const q = filter.value.trim().toLowerCase();
  card.hidden = q !== "" && !card.dataset.service.toLowerCase().includes(q) && card.dataset.status !== q;
}

function summary() {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  let late = 0;
  for (const { row } of services.values()) {
    counts[row.Status] += 1;
    if (isLate(row)) late += 1;
  }
  const chip = (n, text, cls) => {
    const span = el("span", cls);
    span.append(el("b", "", String(n)), ` ${text}`);
    return span;
  };
  const chips = STATUSES.filter((s) => counts[s] > 0).map((s) => chip(counts[s], s));
  if (late > 0) {
    const c = chip(late, "not checked for 3 min", "late");
    c.id = "late";
    chips.push(c);
  }
  document.getElementById("summary").replaceChildren(...chips);
  document.getElementById("empty").hidden = services.size > 0;
}

// Problems first, then by name.
const SEVERITY = { down: 0, degraded: 1, unknown: 2, starting: 3, normal: 4 };
function byConcern(a, b) {
  return SEVERITY[a.row.Status] - SEVERITY[b.row.Status] || a.row.Name.localeCompare(b.row.Name);
}

function sortCards() {
  for (const { card } of [...services.values()].sort(byConcern)) if (card) grid.appendChild(card);
}

function apply(change) {
  const entry = services.get(change.Id);
  if (change.Kind === "deleted") {
    if (entry && entry.card) entry.card.remove();
    services.delete(change.Id);
  } else if (!entry) {
    const at = Date.parse(change.At);
    services.set(change.Id, { row: change.Service, segments: [{ status: change.Service.Status, from: at, to: null }] });
    render(services.get(change.Id));
    sortCards();
  } else {
    if (change.Service.Status !== entry.row.Status) {
      const at = Date.parse(change.At);
      const open = entry.segments[entry.segments.length - 1];
      if (open) open.to = Math.max(open.from, at);
      entry.segments.push({ status: change.Service.Status, from: at, to: null });
    }
    const moved = entry.row.Status !== change.Service.Status;
    entry.row = change.Service;
    render(entry);
    if (moved) sortCards();
  }
  summary();
}

async function load() {
  const list = await fetch("/elkservice?limit=0&sortby=Name");
  if (!list.ok) throw new Error(`GET /elkservice: ${list.status}`);
  const since = list.headers.get("X-Last-Seq") || "0";
  const rows = await list.json();
  services.clear();
  grid.replaceChildren();
  await Promise.all(rows.map(async (row) => {
    let segments = [];
    const res = await fetch(`/elkservice/${row.Id}/uptime`);
    if (res.ok) {
      const u = await res.json();
      segments = u.Segments.map((s) => ({ status: s.Status, from: Date.parse(s.From), to: Date.parse(s.To) }));
      if (segments.length) segments[segments.length - 1].to = null; // still going
    }
    services.set(row.Id, { row, segments });
  }));
  for (const entry of [...services.values()].sort(byConcern)) render(entry);
  summary();
  follow(since);
}

function follow(since) {
  if (source) source.close();
  source = new EventSource(`/elkservice/stream?since=${encodeURIComponent(since)}`);
  source.onopen = () => setLive("up", "live");
  for (const kind of ["created", "transition", "updated", "deleted"]) {
    source.addEventListener(kind, (e) => apply(JSON.parse(e.data)));
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. 410: too far behind): list again, then follow anew.
      setLive("down", "reconnecting");
      setTimeout(() => load().catch(retry), 2000);
    } else {
      setLive("down", "reconnecting");
    }
  };
}

function retry() {
  setLive("down", "reconnecting");
  setTimeout(() => load().catch(retry), 3000);
}

filter.addEventListener("input", () => {
  for (const { card } of services.values()) if (card) applyFilter(card);
});
// A confirmation moves LastCheckedAt without a feed entry: read the check
// times again (the newer of the two wins over an entry that came meanwhile).
async function refreshChecks() {
  const res = await fetch("/elkservice?limit=0&fields=Id,LastCheckedAt");
  if (!res.ok) return;
  for (const { Id, LastCheckedAt } of await res.json()) {
    const entry = services.get(Id);
    if (entry && LastCheckedAt && !(Date.parse(entry.row.LastCheckedAt) >= Date.parse(LastCheckedAt))) {
      entry.row.LastCheckedAt = LastCheckedAt;
    }
  }
}

// "Changed … ago", the check times, the timelines and the 24 h figures move
// with the clock.
setInterval(async () => {
  await refreshChecks().catch(() => {});
  for (const entry of services.values()) render(entry);
  summary();
}, 10000);
load().catch(retry);
