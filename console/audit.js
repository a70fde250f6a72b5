// The console's audit pages: the current tenant's trail (`GET /api/tenants/{tenant_id}/audit`,
// which the policies give to Admins; anyone else sees the API's refusal in words) and the
// caller's own security events (`GET /api/me/audit`). Newest first, 20 at a time, with the
// API's filters. Loaded before console.js and only declares: console.js calls `loadTrail` from
// `showPage` and `startAudit` from `start`, and this file uses its `api`, `el`, `when`, `$`,
// `attempt` and `state`. Event data is only ever set as text.
"use strict";

/** What the API accepts as an action filter (its `action` parameter's pattern). */
const AUDIT_ACTION = /^[a-z_]{1,32}\.[a-z_]{1,31}$/;
const AUDIT_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The two pages: the id prefix of their elements, and the path they list. */
const TRAILS = {
  audit: {
    prefix: "audit",
    actorFilter: true,
    path: () => {
      const tenant = currentTenant();
      return tenant ? `/api/tenants/${encodeURIComponent(tenant.tenant_id)}/audit` : null;
    },
    empty: "No events match.",
  },
  "my-audit": {
    prefix: "my-audit",
    actorFilter: false,
    path: () => "/api/me/audit",
    empty: "No security events of yours match.",
  },
};

/** Per page: the query of the rows shown (filters and all), the next cursor, member e-mails. */
const trailState = { audit: {}, "my-audit": {} };

/** The filters typed on a page, as query parameters, or a sentence naming the bad one. */
function trailFilters(trail) {
  const field = (name) => $(`${trail.prefix}-${name}`);
  const query = new URLSearchParams({ limit: "20" });
  const action = field("action").value.trim();
  if (action) {
    if (!AUDIT_ACTION.test(action)) return "The action filter is a name like flow.created.";
    query.set("action", action);
  }
  if (trail.actorFilter) {
    const actor = field("actor").value.trim();
    if (actor) {
      if (!AUDIT_UUID.test(actor)) return "The actor filter is a user id (a UUID).";
      query.set("actor", actor.toLowerCase());
    }
  }
  for (const name of ["since", "until"]) {
    const value = field(name).value;
    if (!value) continue;
    const instant = new Date(value);
    if (Number.isNaN(instant.getTime())) return `The ${name} filter is not a date and time.`;
    query.set(name, instant.toISOString());
  }
  if (query.has("since") && query.has("until") && query.get("until") <= query.get("since")) {
    return "Until: must be later than since.";
  }
  return query;
}

/** Who made the change, in words: you, a member's e-mail, the operators' CLI, or the user id. */
function actorText(event, emails) {
  if (!event.actor_id) return event.credential === "cli" ? "operator (CLI)" : "—";
  if (event.actor_id === state.me?.id) return `you (${state.me.email})`;
  return emails.get(event.actor_id) ?? event.actor_id;
}

function shown(value) {
  if (value === undefined || value === null) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Before and after, one line per field that either names: `field: old → new`. */
function changeLines(before, after) {
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObject(before) || isObject(after)) {
    const b = isObject(before) ? before : {};
    const a = isObject(after) ? after : {};
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    return keys.map((key) => {
      if (!(key in b)) return `${key}: ${shown(a[key])}`;
      if (!(key in a)) return `${key}: ${shown(b[key])} → —`;
      const same = JSON.stringify(b[key]) === JSON.stringify(a[key]);
      return same ? `${key}: ${shown(a[key])}` : `${key}: ${shown(b[key])} → ${shown(a[key])}`;
    });
  }
  if (before === null && after === null) return [];
  return [`${shown(before)} → ${shown(after)}`];
}

function auditRow(event, emails) {
  const change = el("td", { className: "mono change" });
  for (const line of changeLines(event.before ?? null, event.after ?? null)) change.append(el("div", { text: line }));
  return el(
    "tr",
    { dataset: { eventId: event.id, action: event.action } },
    el("td", { text: when(event.at), title: event.at }),
    el("td", { className: "actor", text: actorText(event, emails), title: event.actor_id ?? "" }),
    el("td", { className: "mono", text: event.credential ?? "—" }),
    el("td", { className: "mono action", text: event.action }),
    el("td", { className: "mono", text: event.target ?? "—" }),
    change,
  );
}

/** Member e-mails of a tenant by user id, to name actors (empty if they cannot be read). */
async function memberEmails(path) {
  const emails = new Map();
  if (!path.startsWith("/api/tenants/")) return emails;
  try {
    const page = await api("GET", `${path.replace(/\/audit$/, "/members")}?limit=100`);
    for (const member of page.items) emails.set(member.user_id, member.email);
  } catch {
    // Actors are then shown by id.
  }
  return emails;
}

/** Shows the first page of a trail with the filters on the page, or the next page with `more`. */
async function loadTrail(name, more = false) {
  const trail = TRAILS[name];
  const mine = trailState[name];
  const rows = $(`${trail.prefix}-rows`);
  const note = $(`${trail.prefix}-note`);
  const moreButton = $(`${trail.prefix}-more`);
  if (!more) {
    const error = $(`${trail.prefix}-error`);
    // The filters are read before anything is asked: a bad one is named and nothing changes.
    const query = trailFilters(trail);
    if (typeof query === "string") {
      error.textContent = query;
      return;
    }
    rows.replaceChildren();
    note.textContent = "";
    moreButton.hidden = true;
    const path = trail.path();
    if (!path) {
      error.textContent = "Choose a tenant first.";
      return;
    }
    mine.path = path;
    mine.query = query;
  }
  // Only the latest request of a page is shown: a slower earlier answer (a previous filter,
  // another tenant) is dropped.
  const ticket = (mine.ticket = (mine.ticket ?? 0) + 1);
  const emails = more ? mine.emails : await memberEmails(mine.path);
  const query = new URLSearchParams(mine.query);
  const wanted = Number(query.get("limit"));
  // A page reads a bounded stretch of the trail, so one that a filter leaves short (or empty)
  // may still have more below it: read on, a few pages at most, to fill what is shown.
  const items = [];
  let cursor = more ? mine.cursor : null;
  for (let reads = 0; reads < 10; reads++) {
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `${mine.path}?${query}`);
    if (ticket !== mine.ticket) return;
    items.push(...page.items);
    cursor = page.next_cursor ?? null;
    if (!cursor || items.length >= wanted) break;
  }
  mine.emails = emails;
  mine.cursor = cursor;
  const built = items.map((event) => auditRow(event, emails));
  if (more) rows.append(...built);
  else rows.replaceChildren(...built);
  if (items.length || more) note.textContent = "";
  else note.textContent = cursor ? "None among the latest events; More reads further back." : trail.empty;
  moreButton.hidden = !mine.cursor;
}

/** Wires the audit pages' forms and buttons (called once by console.js's `start`). */
function startAudit() {
  for (const [name, trail] of Object.entries(TRAILS)) {
    const error = `${trail.prefix}-error`;
    $(`${trail.prefix}-form`).addEventListener("submit", (event) => {
      event.preventDefault();
      attempt(error, () => loadTrail(name));
    });
    $(`${trail.prefix}-clear`).addEventListener("click", () => {
      $(`${trail.prefix}-form`).reset();
      attempt(error, () => loadTrail(name));
    });
    $(`${trail.prefix}-more`).addEventListener("click", () => attempt(error, () => loadTrail(name, true)));
  }
}
