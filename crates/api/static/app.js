// The status page: every service, live from the change feed, however many.
// One request, /status/overview, gives the counts and groups over all
// services and the first page of them, problems first, each with its last 24
// hours; the page then follows /elkservice/stream from that answer's
// X-Last-Seq. The feed keeps the counts, the groups and the cards current: a
// service that turns into a problem is shown even when it was beyond the page.
// The browser's EventSource reconnects by itself and resumes with
// Last-Event-ID; if the feed cannot go on from there (410: pruned that far
// back, or a cursor from a database made afresh), the page loads again.
"use strict";

const DAY = 24 * 3600 * 1000;
const PAGE = 120;
// A watched service is confirmed every 30 s (the watcher's default heartbeat),
// and the writer marks the services of a silent watcher `unknown` after 90 s.
// Not checked for longer than this, a service's row is old news that nothing
// has marked: the broker or the writer itself may be gone.
const LATE = 3 * 60 * 1000;
const STATUSES = ["down", "degraded", "unknown", "starting", "normal"];
const PROBLEMS = new Set(["down", "degraded", "unknown"]);
// Problems first, then by name (as the server orders a page).
const SEVERITY = Object.fromEntries(STATUSES.map((s, i) => [s, i]));

const shown = new Map(); // Id -> { row, segments: [{status, from, to|null}], card }
let counts = {}; // status -> services, over all
let groups = new Map(); // group -> { total, counts }, groups of two or more
let matched = 0; // services that pass the search
let source = null;
let loading = null; // the AbortController of the load in progress
const grid = document.getElementById("services");
const filter = document.getElementById("filter");
const more = document.getElementById("more");
const watcherLine = document.getElementById("watchers");
// A vote of one of these takes a side; `unknown` and `starting` abstain.
const SIDES = new Set(["normal", "degraded", "down"]);
let group = new URLSearchParams(location.search).get("group") || "";
filter.value = new URLSearchParams(location.search).get("q") || "";

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

function groupOf(name) {
  return name.split(/[-._]/)[0];
}

function keeps(row) {
  const q = filter.value.trim().toLowerCase();
  return (!group || groupOf(row.Name) === group)
    && (!q || row.Status === q || row.Name.toLowerCase().includes(q));
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
  if (!entry.card) entry.card = el("article", "card");
  const card = entry.card;
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
  const votes = voteLines(row);
  card.dataset.disagree = String(votes.disagree);
  if (votes.line) card.append(votes.line);
  card.append(bar, axis);
}

// With several watchers: how many agree with the row, who says otherwise,
// and who has gone silent (a silent watcher's vote no longer counts).
function voteLines(row) {
  const votes = row.Votes || [];
  if (votes.length < 2) return { disagree: false, line: null };
  const agree = votes.filter((v) => v.Fresh && v.Status === row.Status).length;
  const others = votes.filter((v) => !v.Fresh || v.Status !== row.Status);
  const disagree = others.some((v) => v.Fresh && SIDES.has(v.Status));
  const line = el("div", "votes");
  line.append(el("b", "", `${agree} of ${votes.length} watchers agree`));
  for (const v of others) {
    const said = v.Fresh ? `${v.Status}${v.Detail ? ` (${v.Detail})` : ""}` : `silent since ${ago(v.ObservedAt)}`;
    const part = el("span", v.Fresh ? "dissent" : "silent", `${v.Watcher}: ${said}`);
    part.title = `${v.Watcher} last observed it ${new Date(v.ObservedAt).toLocaleString()}`;
    line.append(part);
  }
  return { disagree, line };
}

// The watchers, when one has gone silent: its services are decided by the
// others, or turn unknown when too few are left.
function showWatchers(watchers) {
  const silent = (watchers || []).filter((w) => !w.Fresh);
  watcherLine.hidden = silent.length === 0;
  watcherLine.replaceChildren();
  if (!silent.length) return;
  watcherLine.append(el("b", "", `${silent.length} of ${watchers.length} watchers silent:`));
  for (const w of silent) {
    const part = el("span", "silent", `${w.Id} (last heard ${ago(w.LastSeenAt)}, ${w.Services} service${w.Services === 1 ? "" : "s"})`);
    part.dataset.watcher = w.Id;
    watcherLine.append(part);
  }
}

function byConcern(a, b) {
  const x = a.row.Name, y = b.row.Name;
  return SEVERITY[a.row.Status] - SEVERITY[b.row.Status] || (x < y ? -1 : x > y ? 1 : 0);
}

function place() {
  const cards = [...shown.values()].sort(byConcern).map((e) => e.card);
  // Moved only where the order changed: a card keeps its place, and its hover.
  cards.forEach((card, i) => {
    if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null);
  });
}

function chip(n, text, cls) {
  const span = el("span", cls);
  span.append(el("b", "", n.toLocaleString()), ` ${text}`);
  return span;
}

function summary() {
  const total = STATUSES.reduce((n, s) => n + (counts[s] || 0), 0);
  const chips = [chip(total, total === 1 ? "service" : "services", "total")];
  for (const s of STATUSES) {
    if (counts[s] > 0) {
      const c = chip(counts[s], s, s);
      c.dataset.status = s;
      chips.push(c);
    }
  }
  let late = 0;
  for (const { row } of shown.values()) if (isLate(row)) late += 1;
  if (late > 0) {
    const c = chip(late, "not checked for 3 min", "late");
    c.id = "late";
    chips.push(c);
  }
  document.getElementById("summary").replaceChildren(...chips);
  document.getElementById("empty").hidden = total > 0;
  const searching = filter.value.trim() !== "" || group !== "";
  const status = document.getElementById("shown");
  status.textContent = matched > shown.size || searching
    ? `Showing ${shown.size.toLocaleString()} of ${matched.toLocaleString()}${searching ? " matching" : ""}, problems first`
    : "";
  more.hidden = shown.size >= matched;
  renderGroups();
}

function renderGroups() {
  const bar = document.getElementById("groups");
  const chips = [];
  if (group) {
    const clear = el("button", "group active", `${group} ×`);
    clear.title = "Show every group";
    clear.onclick = () => setGroup("");
    chips.push(clear);
  }
  const sorted = [...groups.entries()].sort(([a, x], [b, y]) =>
    STATUSES.slice(0, 4).reduce((d, s) => d || (y.counts[s] || 0) - (x.counts[s] || 0), 0) || (a < b ? -1 : 1));
  for (const [name, g] of sorted) {
    if (name === group) continue;
    const b = el("button", "group");
    const worst = STATUSES.find((s) => (g.counts[s] || 0) > 0 && PROBLEMS.has(s));
    b.dataset.status = worst || "normal";
    b.dataset.group = name;
    b.append(el("span", "", name), el("b", "", g.total.toLocaleString()));
    if (worst) b.title = `${g.counts[worst]} ${worst}`;
    b.onclick = () => setGroup(name);
    chips.push(b);
  }
  bar.replaceChildren(...chips);
  bar.hidden = chips.length === 0;
}

function setGroup(name) {
  group = name;
  remember();
  reload();
}

function remember() {
  const params = new URLSearchParams();
  if (filter.value.trim()) params.set("q", filter.value.trim());
  if (group) params.set("group", group);
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function count(status, by, name) {
  counts[status] = (counts[status] || 0) + by;
  const g = groups.get(groupOf(name));
  if (g) g.counts[status] = (g.counts[status] || 0) + by;
}

function apply(change) {
  const entry = shown.get(change.Id);
  const row = change.Service;
  if (change.Kind === "deleted") {
    if (change.FromStatus) count(change.FromStatus, -1, change.Name);
    const g = groups.get(groupOf(change.Name));
    if (g) g.total -= 1;
    if (entry) {
      entry.card.remove();
      shown.delete(change.Id);
    }
    if (entry || keeps({ Name: change.Name, Status: change.FromStatus })) matched -= 1;
  } else if (change.Kind === "created") {
    count(row.Status, 1, row.Name);
    const g = groups.get(groupOf(row.Name));
    if (g) g.total += 1;
    if (keeps(row)) {
      matched += 1;
      if (PROBLEMS.has(row.Status) || shown.size < PAGE) show(row, change.At);
    }
  } else {
    if (change.FromStatus && change.FromStatus !== row.Status) {
      count(change.FromStatus, -1, row.Name);
      count(row.Status, 1, row.Name);
    }
    if (entry) {
      if (row.Status !== entry.row.Status) {
        const at = Date.parse(change.At);
        const open = entry.segments[entry.segments.length - 1];
        if (open) open.to = Math.max(open.from, at);
        entry.segments.push({ status: row.Status, from: at, to: null });
      }
      // A feed entry does not carry the votes: the card keeps those it had.
      entry.row = { ...row, Votes: row.Votes || entry.row.Votes };
      render(entry);
    } else if (PROBLEMS.has(row.Status) && keeps(row)) {
      // A problem beyond the page: shown, as problems come first.
      show(row, change.At);
    }
  }
  place();
  summary();
}

// A service the page did not have: shown at once from the entry, then with
// its last 24 hours once they are read.
function show(row, at) {
  const entry = { row, segments: [{ status: row.Status, from: Date.parse(at), to: null }] };
  render(entry);
  shown.set(row.Id, entry);
  fetch(`/elkservice/${row.Id}/uptime`).then((res) => res.ok ? res.json() : null).then((u) => {
    if (!u || shown.get(row.Id) !== entry || !u.Segments.length) return;
    const last = entry.segments[entry.segments.length - 1];
    entry.segments = u.Segments.map((s) => ({ status: s.Status, from: Date.parse(s.From), to: Date.parse(s.To) }));
    entry.segments[entry.segments.length - 1].to = null;
    if (last.status !== entry.segments[entry.segments.length - 1].status) entry.segments.push(last);
    render(entry);
  }).catch(() => {});
}

function ask(offset) {
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (filter.value.trim()) params.set("q", filter.value.trim());
  if (group) params.set("group", group);
  return `/status/overview?${params}`;
}

function take(card) {
  const segments = card.Segments.map((s) => ({ status: s.Status, from: Date.parse(s.From), to: Date.parse(s.To) }));
  if (segments.length) segments[segments.length - 1].to = null; // still going
  const row = { ...card };
  delete row.Segments;
  return { row, segments };
}

async function load() {
  if (loading) loading.abort();
  loading = new AbortController();
  const res = await fetch(ask(0), { signal: loading.signal });
  if (!res.ok) throw new Error(`GET /status/overview: ${res.status}`);
  const since = res.headers.get("X-Last-Seq") || "0";
  const o = await res.json();
  counts = o.Counts;
  groups = new Map(o.Groups.map((g) => [g.Name, { total: g.Total, counts: g.Counts }]));
  matched = o.Matched;
  showWatchers(o.Watchers);
  shown.clear();
  grid.replaceChildren();
  for (const card of o.Services) {
    const entry = take(card);
    render(entry);
    shown.set(entry.row.Id, entry);
  }
  place();
  summary();
  follow(since);
}

// The next page; what the feed brought in meanwhile is not shown twice.
async function loadMore() {
  more.disabled = true;
  try {
    const res = await fetch(ask(shown.size));
    if (!res.ok) return;
    const o = await res.json();
    for (const card of o.Services) {
      if (shown.has(card.Id)) continue;
      const entry = take(card);
      render(entry);
      shown.set(entry.row.Id, entry);
    }
    matched = Math.max(o.Matched, shown.size);
    place();
    summary();
  } finally {
    more.disabled = false;
  }
}

function follow(since) {
  if (source) source.close();
  source = new EventSource(`/elkservice/stream?since=${encodeURIComponent(since)}`);
  source.onopen = () => setLive("up", "live");
  for (const kind of ["created", "transition", "updated", "deleted"]) {
    source.addEventListener(kind, (e) => apply(JSON.parse(e.data)));
  }
  source.onerror = () => {
    setLive("down", "reconnecting");
    // Refused (e.g. 410: too far behind): load again, then follow anew.
    if (source.readyState === EventSource.CLOSED) setTimeout(reload, 2000);
  };
}

function reload() {
  load().catch((e) => {
    if (e.name === "AbortError") return;
    setLive("down", "reconnecting");
    setTimeout(reload, 3000);
  });
}

let typing = null;
filter.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    remember();
    reload();
  }, 250);
});
more.addEventListener("click", () => loadMore().catch(() => {}));

// A confirmation moves LastCheckedAt, and the watchers' votes, without a
// feed entry: read them again for the shown services (the newer check time
// wins over an entry that came meanwhile), and the watchers.
async function refreshChecks() {
  const ids = [...shown.keys()];
  for (let i = 0; i < ids.length; i += 200) {
    const query = `Id__in:${ids.slice(i, i + 200).join("|")}`;
    const res = await fetch(`/elkservice?limit=0&query=${encodeURIComponent(query)}`);
    if (!res.ok) return;
    for (const { Id, LastCheckedAt, Votes } of await res.json()) {
      const entry = shown.get(Id);
      if (!entry) continue;
      if (LastCheckedAt && !(Date.parse(entry.row.LastCheckedAt) >= Date.parse(LastCheckedAt))) {
        entry.row.LastCheckedAt = LastCheckedAt;
      }
      entry.row.Votes = Votes;
    }
  }
  // The overview's watchers come from memory; GET /watchers reads the table.
  const res = await fetch("/status/overview?limit=1");
  if (res.ok) showWatchers((await res.json()).Watchers);
}

// "Changed … ago", the check times, the timelines and the 24 h figures move
// with the clock.
setInterval(async () => {
  await refreshChecks().catch(() => {});
  for (const entry of shown.values()) render(entry);
  summary();
}, 10000);
reload();
