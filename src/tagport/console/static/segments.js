// tagport console, segments: the project's segments (build one by clicking, watch its
// estimated size while editing, save, follow its computation, export, edit, delete),
// uploading a list of identities as a segment, the 群体画像 (a segment's or a tag's users
// against all users, as charts and a CSV), and a user's segments in the user lookup.
// Loaded before console.js, whose helpers ($, el, api, state, ...) it calls at run time.
"use strict";

const SEGMENT_POLL_MS = 1000;
const ESTIMATE_DEBOUNCE_MS = 300;
const MAX_PORTRAIT_KEYS = 20;
const VALUE_PICKS = 50;        // the most common values offered for a string key

const seg = {
  admin: false,
  projects: [],
  project: null,               // the project's id
  list: [],                    // the project's segments, as the list route gives them
  tree: null,                  // the builder's root group
  editing: null,               // the key of the segment being edited, or null (a new one)
  keyTyped: false,             // the key was typed: no longer made from the name
  estimateTimer: null,
  estimateRequest: 0,
  picks: new Map(),            // key -> Promise of its most common values
  pollTimer: null,
  watching: new Set(),         // keys saved or computed here: announced when they end
  listRequest: 0,
  portrait: null,              // {group name, answer} of the portrait shown
  portraitCharts: [],
  uploadKey: null,             // an existing FROM_FILES segment the upload replaces
  uploadKeyTyped: false,
};

// the operators of spec section 7, in words
const OPS = {
  "=": "is", "!=": "is not", ">": "is greater than", ">=": "is at least",
  "<": "is less than", "<=": "is at most", between: "is between (inclusive)",
  in: "is one of", "not in": "is none of", contains: "contains",
  "not contains": "does not contain", "starts with": "starts with",
  "is null": "has no value", "is not null": "has a value",
};
const NULL_OPS = new Set(["is null", "is not null"]);
const LIST_OPS = new Set(["in", "not in"]);
const TEXT_OPS = ["=", "!=", "in", "not in", "contains", "not contains", "starts with"];
const ORDER_OPS = ["=", "!=", ">", ">=", "<", "<=", "between", "in", "not in"];

function opsFor(entry) {
  const type = entry.valueType.type;
  const main = type === "STRING" ? TEXT_OPS : type === "BOOL" ? ["=", "!="] : ORDER_OPS;
  return [...main, "is null", "is not null"];
}

const MATCH = { and: "all of these (and)", or: "any of these (or)", none: "none of these (not)" };
const DID_MODES = { atLeast: "did, at least", atMost: "did, at most", not: "did not do" };

const projectPath = () => `v1/api/projects/${encodeURIComponent(seg.project)}`;
const segmentPath = (key) => `${projectPath()}/segment_profiles/${encodeURIComponent(key)}`;
const segmentOf = (key) => seg.list.find((s) => s.key === key);

// -- loading ---------------------------------------------------------------------------

async function loadSegmentsWorkspace() {
  try {
    const [me, projects] = await Promise.all([api("v1/api/whoami"), fetchAll("v1/api/projects")]);
    seg.admin = me.admin;
    seg.projects = projects;
  } catch (err) {
    failed(err, "Could not load the projects");
    return;
  }
  if (!seg.projects.some((p) => p.id === seg.project)) seg.project = seg.projects[0]?.id ?? null;
  const picker = $("project");
  picker.replaceChildren(...seg.projects.map((p) =>
    el("option", { value: p.id, text: `${p.name} (${p.id})` })));
  picker.value = seg.project;
  const one = seg.projects.length <= 1;  // the default project only: nothing to pick
  picker.disabled = one;
  const adminNote = seg.admin ? "" : "This token can see, estimate, compute and export " +
    "segments; saving, uploading and deleting them need a token with the admin scope " +
    "(tagport token create NAME --scope admin).";
  $("segments-admin").textContent = adminNote;
  $("builder-admin").textContent = seg.admin ? "" : `Saving needs an admin token. ${adminNote}`;
  $("builder-save").disabled = !seg.admin;
  $("segment-upload-new").disabled = !seg.admin;
  await loadSegments();
}

async function loadSegments() {
  clearTimeout(seg.pollTimer);
  seg.pollTimer = null;
  if (!seg.project) return;
  const request = ++seg.listRequest;
  let list;
  try {
    list = await fetchAll(`${projectPath()}/segment_profiles`);
  } catch (err) {
    if (request === seg.listRequest) failed(err, "Could not load the segments");
    return;
  }
  if (request !== seg.listRequest || !state.token) return;
  seg.list = list;
  const focused = document.activeElement?.dataset?.focus;
  $("segments").tBodies[0].replaceChildren(...list.map(segmentRow));
  if (focused) document.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  $("segments-empty").hidden = list.length > 0;
  for (const s of list) {
    if (seg.watching.has(s.key) && FINAL.has(s.detector.stage)) {
      seg.watching.delete(s.key);
      $("segments-note").textContent = s.detector.stage === "FINISH"
        ? `${s.name} (${s.key}) computed: ${number(s.detector.totalUsers)} members.`
        : `${s.name} (${s.key}): the computation ended in ${s.detector.stage}` +
          (s.detector.error ? ` (${s.detector.error.code}: ${s.detector.error.message}).` : ".");
      announce($("segments-note").textContent);
    }
  }
  const busy = list.some((s) => ["RUNNING", "READY"].includes(s.detector.stage));
  $("segments").setAttribute("aria-busy", busy ? "true" : "false");
  if (busy) seg.pollTimer = setTimeout(loadSegments, SEGMENT_POLL_MS);
  renderPortraitGroups();
}

function segmentRow(s) {
  const d = s.detector;
  const measured = d.stage === "FINISH";
  const direct = s.createdBy === "DIRECT";
  const action = (text, label, onclick, extra = {}) => el("button", {
    type: "button", text, "aria-label": `${label} ${s.name}`, "data-focus": `${text}:${s.key}`,
    onclick, ...extra });
  const notAdmin = seg.admin ? {} : { disabled: true, title: "needs an admin token" };
  return el("tr", { "data-segment": s.key },
    el("th", { scope: "row", text: s.name }),
    el("td", {}, el("code", { text: s.key })),
    el("td", { text: direct ? "conditions" : "uploaded list" }),
    el("td", { text: s.scheduler }),
    el("td", {}, el("span", { class: `stage stage-${d.stage.toLowerCase()}`, text: d.stage }),
      d.error ? el("span", { class: "error-cell", text: ` ${d.error.code}` }) : null),
    el("td", { class: "num", text: measured ? number(d.totalUsers) : "–" }),
    el("td", { class: "num", text: measured ? percent(d.usersRatio) : "–" }),
    el("td", { class: "actions" },
      direct ? action("Edit", "Edit", () => openBuilder(s))
        : action("Upload…", "Upload members of", () => openUpload(s), notAdmin),
      direct ? action("Compute", "Compute", () => computeSegment(s)) : null,
      action("Export…", "Export", () => openExport({ ...s,
        exportPath: `${segmentPath(s.key)}/export_jobs`, kindWord: "Segment" })),
      action("群体画像", "群体画像 of", () => openPortrait(`seg:${s.key}`)),
      action("Delete", "Delete", () => deleteSegment(s), notAdmin)));
}

async function computeSegment(s) {
  $("segments-error").textContent = "";
  try {
    await api(`${segmentPath(s.key)}/computes`, { method: "POST" });
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("segments-error").textContent = err.code === "COMPUTE_IN_PROGRESS"
      ? `Already computing (${err.code}): ${err.message}` : `${err.code}: ${err.message}`;
    return;
  }
  seg.watching.add(s.key);
  $("segments-note").textContent = `Computing ${s.name} (${s.key})…`;
  await loadSegments();
}

async function deleteSegment(s) {
  $("segments-error").textContent = "";
  if (!window.confirm(`Delete the segment ${s.name} (${s.key})? Its members are cleared.`)) return;
  try {
    await api(segmentPath(s.key), { method: "DELETE" });
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("segments-error").textContent = err.code === "SEGMENT_IN_USE"
      ? `${s.name} is not deleted: another segment's conditions name it (${err.code}: ` +
        `${err.message}).` : `${s.name} is not deleted (${err.code}): ${err.message}`;
    return;
  }
  if (seg.editing === s.key) closeBuilder();
  $("segments-note").textContent = `Deleted ${s.name} (${s.key}).`;
  announce($("segments-note").textContent);
  await loadSegments();
  $("segments-title").focus();
}

// -- the builder's model: groups and conditions ------------------------------------------

const group = (match = "and", items = []) => ({ kind: "group", match, items });
const field = () => ({ kind: "field", key: "", op: "", values: ["", ""] });
const did = () => ({ kind: "did", event: "", mode: "atLeast", times: "1", days: "30" });
const inSegment = () => ({ kind: "segment", key: "", not: false });

class Incomplete extends Error {}

// the condition tree of spec section 7, or Incomplete saying what is missing
function definitionOf(node, path) {
  const where = path ? `Condition ${path}` : "The segment";
  if (node.kind === "group") {
    if (!node.items.length) {
      throw new Incomplete(path ? `Group ${path} is empty.` : "Add a condition to see the size.");
    }
    const exprs = node.items.map((n, i) => definitionOf(n, childPath(path, i)));
    if (node.match !== "none") return { op: node.match, exprs };
    return { op: "not", exprs: [exprs.length === 1 ? exprs[0] : { op: "or", exprs }] };
  }
  if (node.kind === "raw") return node.node;
  if (node.kind === "segment") {
    if (!node.key) throw new Incomplete(`${where}: pick a segment.`);
    const inside = { segment: node.key };
    return node.not ? { op: "not", exprs: [inside] } : inside;
  }
  if (node.kind === "did") {
    if (!node.event) throw new Incomplete(`${where}: pick an event.`);
    const days = Number(node.days);
    if (!Number.isInteger(days) || days < 1) {
      throw new Incomplete(`${where}: the number of days is a whole number, 1 or more.`);
    }
    const times = Number(node.times);
    if (node.mode !== "not" && (node.times === "" || !Number.isInteger(times) || times < 0)) {
      throw new Incomplete(`${where}: the number of times is a whole number.`);
    }
    const op = { atLeast: ">=", atMost: "<=", not: "=" }[node.mode];
    return { did: { event: node.event, measure: "count", window: { lastDays: days } },
             op, values: [node.mode === "not" ? 0 : times] };
  }
  // a key compared with values
  if (!node.key) throw new Incomplete(`${where}: pick an attribute, tag or identity.`);
  if (!node.op) throw new Incomplete(`${where}: pick an operator.`);
  let values;
  if (NULL_OPS.has(node.op)) values = [];
  else if (node.op === "between") values = node.values.slice(0, 2).map((v) => v.trim());
  else if (LIST_OPS.has(node.op)) values = node.values[0].split(",").map((v) => v.trim()).filter(Boolean);
  else values = [node.values[0].trim()];
  if (!NULL_OPS.has(node.op) && (!values.length || values.some((v) => v === ""))) {
    throw new Incomplete(`${where}: enter a value.`);
  }
  const type = entryOf(node.key)?.valueType.type;
  if (type === "DATETIME") values = values.map((v) => v.replace("T", " ") + (v.length === 16 ? ":00" : ""));
  return { key: node.key, op: node.op, values };
}

const childPath = (path, i) => (path ? `${path}.${i + 1}` : `${i + 1}`);

// a saved definition back into the builder; what it cannot show stays as written
function nodeOf(doc) {
  if (doc && Array.isArray(doc.exprs) && (doc.op === "and" || doc.op === "or")) {
    return group(doc.op, doc.exprs.map(nodeOf));
  }
  if (doc && doc.op === "not" && Array.isArray(doc.exprs) && doc.exprs.length === 1) {
    const inside = doc.exprs[0];
    if (inside && typeof inside.segment === "string" && Object.keys(inside).length === 1) {
      return { kind: "segment", key: inside.segment, not: true };
    }
    if (inside && inside.op === "or" && Array.isArray(inside.exprs) && inside.exprs.length > 1) {
      return group("none", inside.exprs.map(nodeOf));
    }
    return group("none", [nodeOf(inside)]);
  }
  if (doc && typeof doc.segment === "string" && Object.keys(doc).length === 1) {
    return { kind: "segment", key: doc.segment, not: false };
  }
  if (doc && doc.did && typeof doc.did === "object") {
    const d = doc.did;
    const simple = d.measure === "count" && d.window && Object.keys(d.window).join() === "lastDays"
      && !d.where && Array.isArray(doc.values) && doc.values.length === 1
      && Object.keys(d).every((k) => ["event", "measure", "window"].includes(k));
    const n = Number(doc.values?.[0]);
    const mode = doc.op === ">=" ? "atLeast" : doc.op === "<=" ? "atMost"
      : doc.op === "=" && n === 0 ? "not" : null;
    if (simple && mode && Number.isInteger(n)) {
      return { kind: "did", event: d.event, mode, times: mode === "not" ? "1" : String(n),
               days: String(d.window.lastDays) };
    }
  }
  if (doc && typeof doc.key === "string" && OPS[doc.op] && entryOf(doc.key)) {
    const values = (doc.values ?? []).map(String);
    const datetime = entryOf(doc.key).valueType.type === "DATETIME";
    const shownValue = (v) => (datetime ? v.replace(" ", "T").slice(0, 16) : v);
    return { kind: "field", key: doc.key, op: doc.op,
             values: LIST_OPS.has(doc.op) ? [values.join(", "), ""]
               : [shownValue(values[0] ?? ""), shownValue(values[1] ?? "")] };
  }
  return { kind: "raw", node: doc };
}

// -- the builder's view ------------------------------------------------------------------

function openBuilder(segment = null) {
  closeUpload();
  closePortrait();
  seg.editing = segment?.key ?? null;
  seg.tree = segment ? nodeOf(segment.definition) : group();
  if (seg.tree.kind !== "group" || seg.tree.match === "none") seg.tree = group("and", [seg.tree]);
  seg.keyTyped = Boolean(segment);
  $("builder-title").textContent = segment ? `Edit ${segment.name}` : "New segment";
  $("segment-name").value = segment?.name ?? "";
  $("segment-key").value = segment?.key ?? "";
  $("segment-key").disabled = Boolean(segment);  // a segment's key does not change
  $("segment-description").value = segment?.description ?? "";
  $("segment-scheduler").value = segment?.scheduler ?? "DAILY";
  $("builder-save").textContent = segment ? "Save changes" : "Save and compute";
  $("builder-error").textContent = "";
  $("builder").hidden = false;
  renderBuilder();
  scheduleEstimate(0);
  $("builder").scrollIntoView({ block: "start" });
  $("builder-title").focus();
}

function closeBuilder() {
  clearTimeout(seg.estimateTimer);
  seg.estimateRequest += 1;
  seg.tree = null;
  seg.editing = null;
  $("builder").hidden = true;
}

// re-render the whole tree, keeping the focus on the control of the same id
function renderBuilder(focusId = document.activeElement?.id) {
  $("builder-tree").replaceChildren(groupView(seg.tree, "", null));
  if (focusId) $(focusId)?.focus();
}

function changed() {
  renderBuilder();
  scheduleEstimate();
}

const idOf = (path, part) => `c${path ? "-" + path.replaceAll(".", "-") : ""}-${part}`;

function groupView(node, path, parent) {
  const name = path ? `Group ${path}` : "The segment";
  const match = el("select", { id: idOf(path, "match"), "aria-label": `${name}: match`,
    onchange: (ev) => { node.match = ev.target.value; changed(); } },
    ...Object.entries(MATCH).map(([v, text]) => el("option", { value: v, text })));
  match.value = node.match;
  const items = node.items.map((child, i) => {
    const p = childPath(path, i);
    const remove = el("button", { type: "button", class: "link", id: idOf(p, "remove"),
      text: "Remove", "aria-label": `Remove condition ${p}`,
      onclick: () => {
        node.items.splice(i, 1);
        renderBuilder(idOf(path, "add-field"));
        scheduleEstimate();
      } });
    const view = child.kind === "group" ? groupView(child, p, node)
      : child.kind === "did" ? didView(child, p)
        : child.kind === "segment" ? segmentView(child, p)
          : child.kind === "raw" ? rawView(child, p) : fieldView(child, p);
    return el("li", { class: `condition condition-${child.kind}`, "data-path": p },
      el("span", { class: "path", "aria-hidden": "true", text: p }), view,
      child.kind === "group" ? null : remove);
  });
  const add = (part, text, make) => el("button", { type: "button", id: idOf(path, part),
    text, "aria-label": path ? `${text} to group ${path}` : text,
    onclick: () => {
      node.items.push(make());
      const p = childPath(path, node.items.length - 1);
      renderBuilder(idOf(p, make === group ? "add-field" : "first"));
      scheduleEstimate();
    } });
  const tools = el("div", { class: "row wrap tight" },
    add("add-field", "Add a condition", field),
    add("add-did", "Add an event done", did),
    add("add-segment", "Add a segment", inSegment),
    !path ? add("add-group", "Add a group", () => group("or")) : null,
    parent ? el("button", { type: "button", class: "link", id: idOf(path, "remove"),
      text: "Remove group", "aria-label": `Remove group ${path}`,
      onclick: () => {
        parent.items.splice(parent.items.indexOf(node), 1);
        renderBuilder(idOf("", "add-group"));
        scheduleEstimate();
      } }) : null);
  return el("fieldset", { class: `group depth-${path ? path.split(".").length : 0}` },
    el("legend", {}, el("span", { text: path ? `Group ${path}: users who match ` : "Users who match " }),
      match),
    items.length ? el("ol", { class: "conditions" }, ...items)
      : el("p", { class: "hint", text: "No conditions yet." }),
    tools);
}

function keyOptions() {
  const groups = [["attributes", "Attributes"], ["tags", "Tags"], ["identities", "Identities"]];
  return [el("option", { value: "", text: "Choose an attribute, tag or identity…" }),
    ...groups.map(([g, title]) => el("optgroup", { label: title },
      ...state.catalog.filter((e) => e.group === g).map((e) =>
        el("option", { value: e.key, text: `${e.name} · ${e.key}` }))))];
}

function fieldView(node, path) {
  const label = `Condition ${path}`;
  const key = el("select", { id: idOf(path, "first"), "aria-label": `${label}: property`,
    onchange: (ev) => {
      node.key = ev.target.value;
      const entry = entryOf(node.key);
      if (entry && !opsFor(entry).includes(node.op)) node.op = "=";
      if (!entry) node.op = "";
      node.values = ["", ""];
      changed();
    } }, ...keyOptions());
  key.value = node.key;
  const entry = entryOf(node.key);
  const parts = [key];
  if (entry) {
    const op = el("select", { id: idOf(path, "op"), "aria-label": `${label}: operator`,
      onchange: (ev) => { node.op = ev.target.value; changed(); } },
      ...opsFor(entry).map((o) => el("option", { value: o, text: OPS[o] })));
    op.value = node.op;
    parts.push(op);
    if (!NULL_OPS.has(node.op)) parts.push(...valueInputs(node, entry, path, label));
  }
  return el("div", { class: "row wrap tight" }, ...parts);
}

function valueInputs(node, entry, path, label) {
  const type = entry.valueType.type;
  const input = (i, name) => {
    const props = { id: idOf(path, `value${i}`), "aria-label": `${label}: ${name}`,
      autocomplete: "off", value: node.values[i],
      oninput: (ev) => { node.values[i] = ev.target.value; scheduleEstimate(); } };
    if (type === "BOOL") {
      const box = el("select", { ...props, onchange: props.oninput },
        el("option", { value: "", text: "choose…" }),
        el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
      box.value = node.values[i];
      return box;
    }
    const kind = { INT: "number", DOUBLE: "number", DATE: "date", DATETIME: "datetime-local" }[type];
    if (kind) return el("input", { ...props, type: kind, step: type === "DOUBLE" ? "any" : "1" });
    const text = el("input", { ...props, type: "text", spellcheck: "false" });
    if (entry.group !== "identities") {
      const list = el("datalist", { id: idOf(path, `picks${i}`) });
      text.setAttribute("list", list.id);
      fillPicks(entry.key, list);
      return el("span", { class: "picker" }, text, list);
    }
    return text;
  };
  if (node.op === "between") {
    return [input(0, "from"), el("span", { text: "and" }), input(1, "to")];
  }
  const one = input(0, LIST_OPS.has(node.op) ? "values, separated by commas" : "value");
  return [one];
}

// the most common values of a string key, for its value picker (a datalist)
function fillPicks(key, list) {
  if (!seg.picks.has(key)) {
    seg.picks.set(key, api(`v1/api/catalog/${encodeURIComponent(key)}/distribution?top=${VALUE_PICKS}`)
      .then((d) => d.values.map((v) => ({ value: shown(v.value), ratio: v.ratio })))
      .catch(() => { seg.picks.delete(key); return []; }));
  }
  seg.picks.get(key).then((values) => list.replaceChildren(...values.map((v) =>
    el("option", { value: v.value, label: `${v.value} (${percent(v.ratio)} of all users)` }))));
}

function didView(node, path) {
  const label = `Condition ${path}`;
  const mode = el("select", { id: idOf(path, "first"), "aria-label": `${label}: did or did not`,
    onchange: (ev) => { node.mode = ev.target.value; changed(); } },
    ...Object.entries(DID_MODES).map(([v, text]) => el("option", { value: v, text })));
  mode.value = node.mode;
  const event = el("select", { id: idOf(path, "event"), "aria-label": `${label}: event`,
    onchange: (ev) => { node.event = ev.target.value; scheduleEstimate(); } },
    el("option", { value: "", text: "Choose an event…" }),
    el("option", { value: "*", text: "any event · *" }),
    ...state.events.map((e) => el("option", { value: e.key, text: `${e.name} · ${e.key}` })));
  event.value = node.event;
  const number = (part, name, min) => el("input", { id: idOf(path, part), type: "number",
    min, step: "1", class: "short", "aria-label": `${label}: ${name}`, value: node[part],
    oninput: (ev) => { node[part] = ev.target.value; scheduleEstimate(); } });
  const parts = [mode, event];
  if (node.mode !== "not") parts.push(number("times", "times", "0"), el("span", { text: "times" }));
  parts.push(el("span", { text: "in the last" }), number("days", "days", "1"), el("span", { text: "days" }));
  return el("div", { class: "row wrap tight" }, ...parts);
}

function segmentView(node, path) {
  const label = `Condition ${path}`;
  const mode = el("select", { id: idOf(path, "first"), "aria-label": `${label}: in or not in`,
    onchange: (ev) => { node.not = ev.target.value === "not"; scheduleEstimate(); } },
    el("option", { value: "in", text: "is in the segment" }),
    el("option", { value: "not", text: "is not in the segment" }));
  mode.value = node.not ? "not" : "in";
  const others = seg.list.filter((s) => s.key !== seg.editing);
  const pick = el("select", { id: idOf(path, "segment"), "aria-label": `${label}: segment`,
    onchange: (ev) => { node.key = ev.target.value; scheduleEstimate(); } },
    el("option", { value: "", text: others.length ? "Choose a segment…" : "No other segment yet" }),
    ...others.map((s) => el("option", { value: s.key, text: `${s.name} · ${s.key}` })));
  pick.value = node.key;
  return el("div", { class: "row wrap tight" }, mode, pick);
}

function rawView(node, path) {
  return el("div", { id: idOf(path, "first"), tabindex: "-1" },
    el("span", { class: "hint", text: "A condition this builder cannot edit, kept as written: " }),
    el("code", { text: JSON.stringify(node.node) }));
}

// -- the estimate while editing ---------------------------------------------------------

function scheduleEstimate(delay = ESTIMATE_DEBOUNCE_MS) {
  clearTimeout(seg.estimateTimer);
  seg.estimateTimer = setTimeout(estimate, delay);
}

function showEstimate(stateName, text, users = "") {
  const line = $("estimate");
  line.dataset.state = stateName;
  line.dataset.users = users;
  line.textContent = text;
}

async function estimate() {
  if (!seg.tree) return;
  const request = ++seg.estimateRequest;
  let definition;
  try {
    definition = definitionOf(seg.tree, "");
  } catch (err) {
    if (!(err instanceof Incomplete)) throw err;
    showEstimate("incomplete", `Estimated size: – (${err.message})`);
    return;
  }
  $("estimate").setAttribute("aria-busy", "true");
  let found;
  try {
    found = await api(`${projectPath()}/segment_estimates`,
                      { method: "POST", body: JSON.stringify({ definition }) });
  } catch (err) {
    if (request !== seg.estimateRequest) return;
    $("estimate").removeAttribute("aria-busy");
    if (err.status === 401) return failed(err, "");
    showEstimate("error", `Estimated size: – (${err.code}: ${err.message})`);
    return;
  }
  if (request !== seg.estimateRequest) return;
  $("estimate").removeAttribute("aria-busy");
  const share = found.totalUsers ? found.users / found.totalUsers : 0;
  showEstimate("ok", `Estimated size: ${number(found.users)} of ${number(found.totalUsers)} users ` +
    `(${percent(share)})` + (found.exact ? "." : `, counted on a ${percent(found.sampleRatio)} sample.`),
    String(found.users));
}

// -- saving ---------------------------------------------------------------------------

function keyFrom(name) {
  const slug = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  // a name of Chinese characters only: a key from the clock (typed keys win)
  return `seg_${slug || Date.now().toString(36)}`;
}

async function saveSegment() {
  $("builder-error").textContent = "";
  const name = $("segment-name").value.trim();
  if (!name) {
    $("builder-error").textContent = "Give the segment a name.";
    $("segment-name").focus();
    return;
  }
  if (!$("segment-key").value.trim()) $("segment-key").value = keyFrom(name);
  const key = $("segment-key").value.trim();
  let definition;
  try {
    definition = definitionOf(seg.tree, "");
  } catch (err) {
    if (!(err instanceof Incomplete)) throw err;
    $("builder-error").textContent = err.message;
    return;
  }
  const body = { key, name, description: $("segment-description").value.trim(),
                 scheduler: $("segment-scheduler").value, definition };
  const editing = seg.editing;
  const button = $("builder-save");
  button.disabled = true;
  let saved;
  try {
    saved = await api(editing ? segmentPath(editing) : `${projectPath()}/segment_profiles`,
                      { method: editing ? "PUT" : "POST", body: JSON.stringify(body) });
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("builder-error").textContent = err.code === "ADMIN_REQUIRED"
      ? `Saving needs an admin token (${err.code}): ${err.message}` : `${err.code}: ${err.message}`;
    return;
  } finally {
    button.disabled = !seg.admin;
  }
  closeBuilder();
  const computing = !FINAL.has(saved.detector.stage) && saved.detector.stage !== "NONE";
  if (computing) seg.watching.add(saved.key);
  $("segments-note").textContent = `Saved ${saved.name} (${saved.key})` +
    (computing ? ": computing…" : ".");
  announce($("segments-note").textContent);
  await loadSegments();
  $("segments-title").focus();
}

// -- uploading a list -----------------------------------------------------------------

function openUpload(segment = null) {
  closeBuilder();
  seg.uploadKey = segment?.key ?? null;
  seg.uploadKeyTyped = false;
  $("upload-form").reset();
  $("upload-name").value = segment?.name ?? "";
  $("upload-key").value = segment?.key ?? "";
  $("upload-name").disabled = $("upload-key").disabled = Boolean(segment);
  $("upload-title").textContent = segment ? `Upload the members of ${segment.name}`
    : "Upload a list of users";
  $("upload-error").textContent = "";
  $("upload-result").textContent = "";
  $("upload").hidden = false;
  $("upload").scrollIntoView({ block: "start" });
  (segment ? $("upload-file") : $("upload-name")).focus();
}

function closeUpload() {
  $("upload").hidden = true;
}

async function submitUpload(event) {
  event.preventDefault();
  $("upload-error").textContent = "";
  $("upload-result").textContent = "";
  const file = $("upload-file").files[0];
  const name = $("upload-name").value.trim();
  if (!seg.uploadKey && !name) {
    $("upload-error").textContent = "Give the segment a name.";
    $("upload-name").focus();
    return;
  }
  if (!file) {
    $("upload-error").textContent = "Choose a CSV file.";
    $("upload-file").focus();
    return;
  }
  if (!seg.uploadKey && !$("upload-key").value.trim()) $("upload-key").value = keyFrom(name);
  const key = seg.uploadKey ?? $("upload-key").value.trim();
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    if (!seg.uploadKey) {
      await api(`${projectPath()}/segment_profiles`, { method: "POST", body: JSON.stringify(
        { key, name, scheduler: "ONCE", createdBy: "FROM_FILES" }) });
      // from here a retry uploads into the segment just made
      seg.uploadKey = key;
      $("upload-name").disabled = $("upload-key").disabled = true;
    }
    const report = await api(`${segmentPath(key)}/members`,
                             { method: "POST", body: file, contentType: "text/csv" });
    const result = $("upload-result");
    result.dataset.values = report.values;
    result.dataset.members = report.members;
    result.dataset.unknown = report.unknown;
    result.textContent = `${number(report.values)} values read: ${number(report.members)} ` +
      `members, ${number(report.unknown)} unknown (no user holds them).`;
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("upload-error").textContent = `${err.code}: ${err.message}`;
  } finally {
    if (button) button.disabled = false;
  }
  await loadSegments();
}

// -- 群体画像 ----------------------------------------------------------------------------

function renderPortraitGroups() {
  const picker = $("portrait-group");
  const before = picker.value;
  const segments = seg.list.filter((s) => s.detector.stage === "FINISH");
  const tags = state.catalog.filter((e) => e.group === "tags");
  picker.replaceChildren(
    el("optgroup", { label: "Segments" }, ...segments.map((s) =>
      el("option", { value: `seg:${s.key}`, text: `${s.name} · ${s.key}` }))),
    el("optgroup", { label: "Tags (users with a value)" }, ...tags.map((t) =>
      el("option", { value: `tag:${t.key}`, text: `${t.name} · ${t.key}` }))));
  if (before && picker.querySelector(`option[value="${CSS.escape(before)}"]`)) picker.value = before;
}

function renderPortraitProperties() {
  const box = $("portrait-properties");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const entries = state.catalog.filter((e) => e.group === "attributes" || e.group === "tags");
  box.replaceChildren(el("ul", {}, ...entries.map((e) => el("li", {}, el("label", {},
    el("input", { type: "checkbox", value: e.key, checked: checked.has(e.key) }), " ",
    el("span", { text: e.name }), " ", el("code", { class: "muted", text: e.key }))))));
}

function openPortrait(groupValue) {
  closeBuilder();
  closeUpload();
  showView("segments");
  renderPortraitGroups();
  if (!$("portrait-properties").querySelector("input")) renderPortraitProperties();
  const boxes = [...$("portrait-properties").querySelectorAll("input")];
  if (!boxes.some((b) => b.checked)) {
    // a first look: the first three attributes
    const attributes = new Set(state.catalog.filter((e) => e.group === "attributes").map((e) => e.key));
    boxes.filter((b) => attributes.has(b.value)).slice(0, 3).forEach((b) => { b.checked = true; });
  }
  if (groupValue) $("portrait-group").value = groupValue;
  $("portrait-error").textContent = "";
  $("portrait").hidden = false;
  $("portrait").scrollIntoView({ block: "start" });
  $("portrait-group").focus();
}

function closePortrait() {
  for (const chart of seg.portraitCharts) chart.destroy();
  seg.portraitCharts = [];
  $("portrait").hidden = true;
}

async function showPortrait(event) {
  event.preventDefault();
  $("portrait-error").textContent = "";
  const value = $("portrait-group").value;
  const keys = [...$("portrait-properties").querySelectorAll("input:checked")].map((i) => i.value);
  if (!value) {
    $("portrait-error").textContent = "Pick a segment or a tag.";
    $("portrait-group").focus();
    return;
  }
  if (!keys.length || keys.length > MAX_PORTRAIT_KEYS) {
    $("portrait-error").textContent = `Tick 1 to ${MAX_PORTRAIT_KEYS} attributes or tags.`;
    $("portrait-properties").querySelector("input")?.focus();
    return;
  }
  const [kind, key] = [value.slice(0, 3), value.slice(4)];
  const base = kind === "seg" ? segmentPath(key) : `v1/api/user_tags/${encodeURIComponent(key)}`;
  const query = keys.map(encodeURIComponent).join(",");
  let found;
  try {
    found = await api(`${base}/portrait?properties=${query}`);
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("portrait-error").textContent = `${err.code}: ${err.message}`;
    return;
  }
  const groupName = kind === "seg" ? segmentOf(key)?.name ?? key : entryOf(key)?.name ?? key;
  seg.portrait = { name: groupName, found };
  renderPortrait(groupName, found);
  $("portrait-csv").disabled = false;
}

function portraitRows(property) {
  if (property.bins.length) {
    return property.bins.map((b) => ({ label: `${decimals(b.from)} – ${decimals(b.to)}`, ...b }));
  }
  return property.values.map((v) => ({ label: shown(v.value), ...v }));
}

function renderPortrait(groupName, found) {
  for (const chart of seg.portraitCharts) chart.destroy();
  seg.portraitCharts = [];
  $("portrait-summary").textContent = `${groupName}: ${number(found.groupUsers)} of ` +
    `${number(found.totalUsers)} users (${percent(found.totalUsers ? found.groupUsers / found.totalUsers : 0)}).`;
  const items = found.properties.map((p) => {
    const rows = portraitRows(p);
    const titleId = `portrait-${p.key}-title`;
    const summaryId = `portrait-${p.key}-summary`;
    const canvas = el("canvas", { role: "img", "aria-labelledby": titleId, "aria-describedby": summaryId });
    const table = el("table", { class: "portrait-table" },
      el("caption", { class: "visually-hidden", text: `${p.name}: the group against all users` }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Value" }),
        el("th", { scope: "col", class: "num", text: "Group users" }),
        el("th", { scope: "col", class: "num", text: "Share of the group" }),
        el("th", { scope: "col", class: "num", text: "All users" }),
        el("th", { scope: "col", class: "num", text: "Share of all users" }))),
      el("tbody", {}, ...rows.map((r) => el("tr", {},
        el("th", { scope: "row", text: r.label }),
        el("td", { class: "num", text: number(r.groupUsers) }),
        el("td", { class: "num", text: percent(r.groupRatio) }),
        el("td", { class: "num", text: number(r.allUsers) }),
        el("td", { class: "num", text: percent(r.allRatio) })))));
    const item = el("section", { class: "portrait-item", "data-key": p.key, "aria-labelledby": titleId },
      el("h3", { id: titleId }, el("span", { text: p.name }), " ", el("code", { class: "muted", text: p.key })),
      el("p", { id: summaryId, class: "hint", text:
        `${number(p.groupCovered)} of the group's ${number(found.groupUsers)} users have a value; ` +
        `${number(p.allCovered)} of all ${number(found.totalUsers)}.` +
        (rows.length ? "" : " No values.") }),
      rows.length ? el("div", { class: "chart-wrap" }, canvas) : null,
      el("div", { class: "table-wrap" }, table));
    if (rows.length && typeof Chart !== "undefined") {
      item.chartRows = rows;
      item.canvas = canvas;
    }
    return item;
  });
  $("portrait-charts").replaceChildren(...items);
  for (const item of items) {
    if (!item.canvas) continue;
    const rows = item.chartRows;
    const chart = new Chart(item.canvas, {
      type: "bar",
      data: {
        labels: rows.map((r) => r.label),
        datasets: [
          { label: "This group", data: rows.map((r) => r.groupRatio * 100), backgroundColor: "#1f5fbf" },
          { label: "All users", data: rows.map((r) => r.allRatio * 100), backgroundColor: "#a9b4c4" },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { tooltip: { callbacks: { label: (ctx) => {
          const r = rows[ctx.dataIndex];
          return ctx.datasetIndex === 0
            ? `This group: ${number(r.groupUsers)} users (${percent(r.groupRatio)})`
            : `All users: ${number(r.allUsers)} users (${percent(r.allRatio)})`;
        } } } },
        scales: { y: { beginAtZero: true, title: { display: true, text: "% of users" } } },
      },
    });
    item.canvas.dataset.chart = String(seg.portraitCharts.length);
    seg.portraitCharts.push(chart);
  }
}

const csvField = (v) => (typeof v === "number" ? String(v) : `"${String(v).replaceAll('"', '""')}"`);

function portraitCsv(found) {
  const lines = [["property", "name", "value", "group_users", "group_share", "all_users",
                  "all_share"].map(csvField).join(",")];
  for (const p of found.properties) {
    for (const r of portraitRows(p)) {
      lines.push([p.key, p.name, r.label, r.groupUsers, r.groupRatio, r.allUsers, r.allRatio]
        .map(csvField).join(","));
    }
  }
  return lines.join("\r\n") + "\r\n";
}

function downloadPortrait() {
  if (!seg.portrait) return;
  const blob = new Blob(["\ufeff" + portraitCsv(seg.portrait.found)], { type: "text/csv;charset=utf-8" });
  const link = el("a", { href: URL.createObjectURL(blob),
                         download: `${seg.portrait.name}_群体画像.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

// -- the user lookup's segments ---------------------------------------------------------

async function userSegments(key, value) {
  if (!seg.project) return { gioId: "0", values: [] };
  return api(`${projectPath()}/user_segments/${encodeURIComponent(key)}/${encodeURIComponent(value)}`);
}

function renderUserSegments(found) {
  const project = seg.projects.find((p) => p.id === seg.project);
  const where = project ? `project ${project.name}` : "this project";
  $("user-segments-summary").textContent = found.values.length
    ? `Member of ${found.values.length} segment${found.values.length === 1 ? "" : "s"} of ${where}.`
    : `Not a member of any segment of ${where}.`;
  $("user-segments-list").replaceChildren(...found.values.map((s) => el("li", { "data-segment": s.key },
    el("span", { text: s.name }), " ", el("code", { class: "muted", text: s.key }))));
}

// -- wiring -----------------------------------------------------------------------------

function wireSegments() {
  $("project").addEventListener("change", async (ev) => {
    seg.project = ev.target.value;
    closeBuilder();
    closeUpload();
    closePortrait();
    await loadSegments();
  });
  $("segment-new").addEventListener("click", () => openBuilder());
  $("segment-upload-new").addEventListener("click", () => openUpload());
  $("portrait-open").addEventListener("click", () => openPortrait());
  $("builder-close").addEventListener("click", () => { closeBuilder(); $("segment-new").focus(); });
  $("builder-cancel").addEventListener("click", () => { closeBuilder(); $("segment-new").focus(); });
  $("builder-save").addEventListener("click", saveSegment);
  $("segment-name").addEventListener("input", () => {
    if (!seg.keyTyped && !seg.editing) {
      $("segment-key").value = $("segment-name").value.trim() ? keyFrom($("segment-name").value) : "";
    }
  });
  $("segment-key").addEventListener("input", () => { seg.keyTyped = true; });
  $("upload-name").addEventListener("input", () => {
    if (!seg.uploadKeyTyped && !seg.uploadKey) {
      $("upload-key").value = $("upload-name").value.trim() ? keyFrom($("upload-name").value) : "";
    }
  });
  $("upload-key").addEventListener("input", () => { seg.uploadKeyTyped = true; });
  $("upload-close").addEventListener("click", () => { closeUpload(); $("segment-upload-new").focus(); });
  $("upload-form").addEventListener("submit", submitUpload);
  $("portrait-form").addEventListener("submit", showPortrait);
  $("portrait-close").addEventListener("click", () => { closePortrait(); $("portrait-open").focus(); });
  $("portrait-csv").addEventListener("click", downloadPortrait);
}

function resetSegments() {
  clearTimeout(seg.pollTimer);
  closeBuilder();
  closeUpload();
  closePortrait();
  seg.list = [];
  seg.watching.clear();
  seg.picks.clear();
  $("segments").tBodies[0].replaceChildren();
}

// the display-name language changed: names in the builder, pickers and portrait follow
function relabelSegments() {
  seg.picks.clear();
  if (seg.tree) renderBuilder();
  renderPortraitGroups();
  renderPortraitProperties();
  if (seg.portrait && !$("portrait").hidden) $("portrait-form").requestSubmit();
}
