// tagport console: sign in with a token, see the tags (each with its definition, state and
// value distribution as a chart), compute one, export, follow the jobs, look a user up.
// Segments, the builder and the 群体画像 are in segments.js (loaded first).
// The token lives in sessionStorage and travels only in the Authorization header.
// Every string from the server is set as text, never parsed as HTML.
"use strict";

const MAX_PROPERTIES = 60;
const POLL_MS = 1000;
const JOBS_PAGE = 20;
const FINAL = new Set(["FINISH", "ERROR"]);
const KEY_TOKEN = "tagport.token";
const KEY_LANGUAGE = "tagport.language";

const state = {
  token: sessionStorage.getItem(KEY_TOKEN),
  language: sessionStorage.getItem(KEY_LANGUAGE) || "CH",
  catalog: [],        // [{key, name, group, type}]
  events: [],         // [{key, name, attributes}], the catalog's events
  tags: new Map(),    // key -> the tag as the list gives it
  shownTag: null,     // the key of the tag whose page is open
  tagRequest: 0,      // only the newest tag page request renders
  tagTimer: null,     // polls the open tag while it computes
  chart: null,        // the Chart.js chart of the open tag
  lookedUp: null,     // [identity key, value] of the user shown
  tag: null,          // the tag being exported
  picked: [],         // keys, in the order picked
  jobsLimit: JOBS_PAGE,
  jobStages: new Map(),
  jobsRequest: 0,     // only the newest jobs request renders and schedules the next poll
  pollTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, language: state.language };
  if (options.body) headers["Content-Type"] = options.contentType ?? "application/json";
  let response;
  try {
    response = await fetch(path, { ...options, headers, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "NETWORK", "The server did not answer. Is tagport running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, body?.code ?? `HTTP_${response.status}`,
                       body?.message ?? response.statusText);
  }
  return body;
}

function announce(text) {
  $("status").textContent = text;
}

// -- signing in and out ----------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const input = $("token");
  const token = input.value.trim();
  if (!token) {
    $("sign-in-error").textContent = "Enter a token.";
    input.focus();
    return;
  }
  state.token = token;
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    await api("v1/api/user_tags?limit=1");
  } catch (err) {
    state.token = null;
    $("sign-in-error").textContent = err.status === 401
      ? `This token is not valid (${err.code}): ${err.message}`
      : `Could not sign in: ${err.message}`;
    input.setAttribute("aria-invalid", "true");
    input.select();
    return;
  } finally {
    if (button) button.disabled = false;
  }
  sessionStorage.setItem(KEY_TOKEN, token);
  input.value = "";
  input.removeAttribute("aria-invalid");
  await enterWorkspace();
  // Focus the tags heading, unless the user has already moved on (opened a tag, say) while
  // the rest of the workspace was still loading.
  const active = document.activeElement;
  if (!active || active === document.body || $("sign-in").contains(active)) {
    $("tags-title").setAttribute("tabindex", "-1");
    $("tags-title").focus();
  }
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_TOKEN);
  state.token = null;
  stopPolling();
  state.jobStages.clear();
  $("tags").tBodies[0].replaceChildren();
  $("jobs").tBodies[0].replaceChildren();
  closeTag();
  resetSegments();
  $("user-result").hidden = true;
  state.lookedUp = null;
  $("workspace").hidden = true;
  $("session-tools").hidden = true;
  $("views").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function enterWorkspace() {
  $("sign-in").hidden = true;
  $("sign-in-error").textContent = "";
  $("workspace").hidden = false;
  $("session-tools").hidden = false;
  $("views").hidden = false;
  $("language").value = state.language;
  $("workspace").setAttribute("aria-busy", "true");
  try {
    await Promise.all([loadTags(), loadCatalog(), loadJobs(), loadSegmentsWorkspace()]);
    renderIdentityPicker();
    renderPortraitGroups();
  } finally {
    $("workspace").removeAttribute("aria-busy");
  }
}

// Any 401 after signing in means the token was revoked: back to the sign-in form.
function failed(err, where) {
  if (err.status === 401) {
    signOut(`Signed out: ${err.message} (${err.code}).`);
  } else {
    announce(`${where}: ${err.message}`);
  }
}

// -- tags ------------------------------------------------------------------------------

async function fetchAll(path) {
  const values = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api(`${path}?limit=1000&offset=${offset}`);
    values.push(...page.values);
    if (!page.hasNextPage) return values;
  }
}

const number = (n) => (n == null ? "–" : n.toLocaleString());
const percent = (r) => `${(r * 100).toLocaleString(undefined, { maximumFractionDigits: 1 })}%`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const valueType = (v) => (v.isArray ? `${v.type}[]` : v.type);

async function loadTags() {
  let tags;
  try {
    tags = await fetchAll("v1/api/user_tags");
  } catch (err) {
    failed(err, "Could not load the tags");
    return;
  }
  state.tags = new Map(tags.map((tag) => [tag.key, tag]));
  const rows = tags.map((tag) => {
    const measured = tag.detector.stage === "FINISH";
    return el("tr", {},
      el("th", { scope: "row" }, el("button", {
        type: "button", class: "link", text: tag.name, "data-tag": tag.key,
        "aria-label": `${tag.name}: details and distribution`,
        onclick: () => openTag(tag.key),
      })),
      el("td", {}, el("code", { text: tag.key })),
      el("td", { text: valueType(tag.valueType) }),
      el("td", { class: "num", text: measured ? number(tag.detector.totalUsers) : "–" }),
      el("td", { class: "num", text: measured ? percent(tag.detector.usersRatio) : "–" }),
      el("td", { text: measured ? when(tag.detector.detectedAt) : "not measured yet" }),
      el("td", {}, el("span", { class: "muted", text: tag.type })),
      el("td", {}, el("button", {
        type: "button", text: "Export…", "aria-label": `Export ${tag.name}`,
        onclick: () => openExport(tag),
      })));
  });
  $("tags").tBodies[0].replaceChildren(...rows);
  $("tags-empty").hidden = tags.length > 0;
}

// -- one tag: its definition, state, computing it, its value distribution ----------------

const STAGE_WORDS = {
  NONE: "not computed yet", READY: "queued", RUNNING: "computing", FINISH: "computed",
  ERROR: "failed",
};

function closeTag() {
  clearTimeout(state.tagTimer);
  state.tagTimer = null;
  state.shownTag = null;
  if (state.chart) state.chart.destroy();
  state.chart = null;
  $("tag-detail").hidden = true;
}

async function openTag(key, { focus = true } = {}) {
  const changed = state.shownTag !== key;
  state.shownTag = key;
  if (changed) {
    $("tag-error").textContent = "";
    $("tag-compute-note").textContent = "";
  }
  await renderTag(key);
  if (focus && state.shownTag === key) {
    $("tag-detail").scrollIntoView({ block: "start" });
    $("tag-title").focus();
  }
}

async function renderTag(key) {
  const request = ++state.tagRequest;
  let tag;
  let distribution;
  try {
    [tag, distribution] = await Promise.all([
      api(`v1/api/user_tags/${encodeURIComponent(key)}`),
      api(`v1/api/user_tags/${encodeURIComponent(key)}/distribution`),
    ]);
  } catch (err) {
    if (request === state.tagRequest) failed(err, "Could not load the tag");
    return;
  }
  if (request !== state.tagRequest || state.shownTag !== key) return;
  $("tag-detail").hidden = false;
  $("tag-title").textContent = tag.name;
  $("tag-key").textContent = tag.key;
  $("tag-type").textContent = tag.type === "IMPORT"
    ? "IMPORT (values loaded from files)" : tag.type;
  $("tag-value-type").textContent = valueType(tag.valueType);
  $("tag-definition").textContent = tag.definition ?? "– (loaded, not computed)";
  $("tag-description").textContent = tag.description || "–";
  $("tag-scheduler").textContent = tag.scheduler
    ? (tag.scheduler === "DAILY" ? "DAILY (every day)" : "ONCE (on demand)") : "–";
  const d = tag.detector;
  const stage = el("span", { class: `stage stage-${d.stage.toLowerCase()}`, text: d.stage });
  $("tag-state").replaceChildren(stage, " ", el("span", { class: "muted",
    text: tag.type === "IMPORT" ? (d.stage === "FINISH" ? "measured" : "not measured yet")
      : STAGE_WORDS[d.stage] ?? "" }));
  $("tag-computed").textContent = when(d.detectedAt);
  $("tag-covered").textContent = d.stage === "FINISH"
    ? `${number(d.totalUsers)} (${percent(d.usersRatio)})` : "–";
  const error = d.error;
  $("tag-error").textContent = error ? `${error.code}: ${error.message}` : "";
  const computed = tag.type !== "IMPORT";
  $("tag-compute").hidden = !computed;
  $("tag-compute").disabled = d.stage === "RUNNING";
  if (!computed) $("tag-compute-note").textContent = "Loaded tags change with loads, not computations.";
  renderDistribution(distribution);
  clearTimeout(state.tagTimer);
  state.tagTimer = null;
  if (d.stage === "RUNNING") {
    state.tagTimer = setTimeout(() => renderTag(key), POLL_MS);
  } else if (state.computing === key) {
    state.computing = null;
    $("tag-compute-note").textContent = d.stage === "FINISH"
      ? `Computed: ${number(d.totalUsers)} users have a value.` : `The computation ended in ${d.stage}.`;
    announce($("tag-compute-note").textContent);
    loadTags();
  }
}

const decimals = (x) => x.toLocaleString(undefined, { maximumFractionDigits: 2 });
const shown = (v) => (typeof v === "string" ? v : JSON.stringify(v));

// one row per bar: the label, the users, the share of all users
function distributionRows(distribution) {
  if (distribution.bins.length) {
    return distribution.bins.map((b) => ({
      label: `${decimals(b.from)} – ${decimals(b.to)}`, users: b.users, ratio: b.ratio }));
  }
  return distribution.values.map((v) => ({ label: shown(v.value), users: v.users, ratio: v.ratio }));
}

function renderDistribution(distribution) {
  const rows = distributionRows(distribution);
  const numeric = distribution.bins.length > 0;
  $("distribution-summary").textContent =
    `${number(distribution.coveredUsers)} of ${number(distribution.totalUsers)} users have a value ` +
    `(${percent(distribution.coveredRatio)}). ` +
    (rows.length === 0 ? "No values yet."
      : numeric ? `A histogram of ${rows.length} equal bins.`
        : `The ${rows.length} most common values, as bars.`);
  $("distribution-table").tBodies[0].replaceChildren(...rows.map((r) => el("tr", {},
    el("th", { scope: "row", text: r.label }),
    el("td", { class: "num", text: number(r.users) }),
    el("td", { class: "num", text: percent(r.ratio) }))));
  if (state.chart) state.chart.destroy();
  state.chart = null;
  if (!rows.length || typeof Chart === "undefined") return;
  state.chart = new Chart($("distribution-chart"), {
    type: "bar",
    data: {
      labels: rows.map((r) => r.label),
      datasets: [{ label: "Users", data: rows.map((r) => r.users),
                   backgroundColor: "#1f5fbf", borderWidth: 0,
                   categoryPercentage: numeric ? 1.0 : 0.8, barPercentage: numeric ? 0.98 : 0.9 }],
    },
    options: {
      indexAxis: numeric ? "x" : "y",
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (item) =>
          `${number(item.raw)} users (${percent(rows[item.dataIndex].ratio)} of all users)` } },
      },
      scales: { [numeric ? "y" : "x"]: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

async function computeNow() {
  const key = state.shownTag;
  const button = $("tag-compute");
  button.disabled = true;
  $("tag-error").textContent = "";
  try {
    await api(`v1/api/user_tags/${encodeURIComponent(key)}/computes`, { method: "POST" });
    state.computing = key;
    $("tag-compute-note").textContent = "Computation queued; this page follows it.";
    announce($("tag-compute-note").textContent);
  } catch (err) {
    button.disabled = false;
    if (err.status === 401) return failed(err, "");
    $("tag-compute-note").textContent = err.code === "COMPUTE_IN_PROGRESS"
      ? `Already computing (${err.code}): ${err.message}`
      : `Could not compute (${err.code}): ${err.message}`;
    announce($("tag-compute-note").textContent);
    return;
  }
  await renderTag(key);
}

// -- the export dialog -----------------------------------------------------------------

const GROUPS = [["identities", "Identities"], ["attributes", "Attributes"], ["tags", "Tags"]];

async function loadCatalog() {
  try {
    const catalog = await api("v1/api/catalog");
    state.catalog = GROUPS.flatMap(([group]) =>
      catalog[group].map((e) => ({ ...e, group, type: valueType(e.valueType) })));
    state.events = catalog.events;
  } catch (err) {
    failed(err, "Could not load the catalog");
  }
}

function entryOf(key) {
  return state.catalog.find((e) => e.key === key);
}

function openExport(tag) {
  state.tag = tag;
  state.picked = [];
  $("export-title").textContent = `Export the users of ${tag.name}`;
  $("export-tag").textContent = `${tag.kindWord ?? "Tag"} ${tag.key}: ${tag.detector.stage === "FINISH"
    ? `${number(tag.detector.totalUsers)} users` : "coverage not measured yet"}.`;
  $("export-error").textContent = "";
  $("property-search").value = "";
  $("export-form").reset();
  renderPropertyList();
  renderPicked();
  toggleHeaderType();
  $("export-dialog").showModal();
  $("property-search").focus();
}

function renderPropertyList() {
  const query = $("property-search").value.trim().toLowerCase();
  const full = state.picked.length >= MAX_PROPERTIES;
  const groups = GROUPS.map(([group, title]) => {
    const items = state.catalog
      .filter((e) => e.group === group)
      .filter((e) => !query || e.name.toLowerCase().includes(query)
                     || e.key.toLowerCase().includes(query))
      .map((e) => {
        const checked = state.picked.includes(e.key);
        const box = el("input", {
          type: "checkbox", value: e.key, checked, disabled: full && !checked,
          onchange: (ev) => togglePick(e.key, ev.target.checked),
        });
        return el("li", {}, el("label", {}, box, " ", el("span", { text: e.name }), " ",
          el("code", { text: e.key }), " ", el("span", { class: "muted", text: e.type })));
      });
    if (!items.length) return null;
    return el("div", { role: "group", "aria-label": title },
      el("h3", { class: "small", text: title }), el("ul", {}, ...items));
  }).filter(Boolean);
  if (!groups.length) groups.push(el("p", { class: "hint", text: "No property matches." }));
  $("property-list").replaceChildren(...groups);
}

function togglePick(key, on) {
  if (on && !state.picked.includes(key) && state.picked.length < MAX_PROPERTIES) {
    state.picked.push(key);
  } else if (!on) {
    state.picked = state.picked.filter((k) => k !== key);
  }
  // keep focus on the same checkbox across the re-render
  renderPropertyList();
  renderPicked();
  const box = $("property-list").querySelector(`input[value="${CSS.escape(key)}"]`);
  if (box) box.focus();
}

function renderPicked() {
  const n = state.picked.length;
  $("property-count").textContent = n === 0
    ? "None picked: the file will hold gio_id only."
    : `${n} of ${MAX_PROPERTIES} picked${n >= MAX_PROPERTIES ? " (the most allowed)" : ""}.`;
  const items = state.picked.map((key) => {
    const name = entryOf(key)?.name ?? key;
    return el("li", {}, el("span", { text: name }), " ", el("code", { text: key }), " ",
      el("button", {
        type: "button", class: "link", text: "Remove", "aria-label": `Remove ${name}`,
        onclick: () => { togglePick(key, false); $("property-search").focus(); },
      }));
  });
  $("picked").replaceChildren(...items);
}

function toggleHeaderType() {
  // the header row and the charset are CSV's; Parquet compresses its own columns
  const format = $("export-form").elements.fileFormat.value;
  $("header-type").disabled = format !== "csv";
  $("charset").disabled = format !== "csv";
  $("compression").disabled = format === "parquet";
}

async function submitExport(event) {
  event.preventDefault();
  const form = $("export-form");
  const body = {
    properties: state.picked,
    fileFormat: form.elements.fileFormat.value,
    csvHeaderType: form.elements.csvHeaderType.value,
  };
  if (form.elements.fileFormat.value === "csv") body.charset = form.elements.charset.value;
  if (form.elements.fileFormat.value !== "parquet") {
    body.compression = form.elements.compression.value;
  }
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    const path = state.tag.exportPath
      ?? `v1/api/user_tags/${encodeURIComponent(state.tag.key)}/export_jobs`;
    const job = await api(path, { method: "POST", body: JSON.stringify(body) });
    $("export-dialog").close();
    announce(`Export job ${job.name} submitted.`);
    // known from here, so that a job already finished at the next listing is announced too
    state.jobStages.set(job.id, job.stage);
    await loadJobs();
    $("jobs-title").focus();
  } catch (err) {
    if (err.status === 401) {
      $("export-dialog").close();
      failed(err, "");
    } else {
      $("export-error").textContent = `${err.code}: ${err.message}`;
    }
  } finally {
    if (button) button.disabled = false;
  }
}

// -- jobs ------------------------------------------------------------------------------

function size(bytes) {
  if (bytes == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function duration(job) {
  if (!job.startedAt) return FINAL.has(job.stage) ? "–" : "waiting";
  const end = job.finishedAt ? new Date(job.finishedAt) : new Date();
  const seconds = Math.max(0, (end - new Date(job.startedAt)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

const fileName = (uri) => decodeURIComponent(uri).split("/").pop();

// Signed links expire (15 minutes by default); a stale one is swapped for a fresh one
// from the job's result before the browser follows it.
async function followDownload(event, job, index) {
  const link = event.currentTarget;
  const expires = Number(new URL(link.href).searchParams.get("expires"));
  if (expires * 1000 > Date.now() + 10_000) return;
  event.preventDefault();
  try {
    const fresh = await api(`v1/api/job/result/${encodeURIComponent(job.id)}`);
    link.href = relative(fresh.downloadLinks[index]);
    window.location.assign(link.href);
  } catch (err) {
    failed(err, "Could not download");
  }
}

const relative = (link) => link.replace(/^\//, "");

function resultCell(job) {
  if (job.stage === "ERROR") {
    const error = job.error || {};
    return el("td", { class: "error-cell" }, el("strong", { text: error.code ?? "ERROR" }),
      ": ", el("span", { text: error.message ?? "the job failed" }));
  }
  if (job.stage !== "FINISH") return el("td", { class: "muted", text: "not ready yet" });
  if (job.expired || !job.downloadLinks) return el("td", { class: "muted", text: "expired" });
  const links = job.downloadLinks.map((link, i) => {
    const name = fileName(job.uris[i]);
    const label = job.downloadLinks.length > 1 ? `Download part ${i + 1}` : "Download";
    return el("a", {
      href: relative(link), class: "button", text: label, "aria-label": `${label}: ${name}`,
      "data-focus": `${job.id}:${i}`, title: name,
      onclick: (ev) => followDownload(ev, job, i),
    });
  });
  const names = job.uris.map((uri) => el("span", { class: "muted file-name", text: fileName(uri) }));
  return el("td", { class: "links" }, ...links, ...names);
}

function jobFormat(job) {
  const parts = [job.fileFormat.toUpperCase()];
  if (job.compression && job.compression !== "none") parts.push(job.compression);
  if (job.charset && job.charset !== "UTF-8") parts.push(job.charset);
  return parts.join(" · ");
}

function jobRow(job) {
  const stage = el("span", { class: `stage stage-${job.stage.toLowerCase()}`, text: job.stage });
  return el("tr", { "data-job": job.id },
    el("th", { scope: "row" }, el("span", { text: job.name }), el("br"),
      el("code", { class: "muted", text: job.id })),
    el("td", {}, el("code", { text: job.tagKey }), el("br"),
      el("span", { class: "muted", text: jobFormat(job) })),
    el("td", {}, stage),
    el("td", { class: "num", text: number(job.rowCount) }),
    el("td", { class: "num", text: size(job.byteCount) }),
    el("td", { class: "num", text: duration(job) }),
    el("td", { text: when(job.createdAt) }),
    resultCell(job));
}

function noteChanges(jobs) {
  for (const job of jobs) {
    const before = state.jobStages.get(job.id);
    if (before && before !== job.stage && FINAL.has(job.stage)) {
      announce(job.stage === "FINISH"
        ? `Job ${job.name} finished: ${number(job.rowCount)} rows, ready to download.`
        : `Job ${job.name} failed: ${job.error?.code}.`);
    }
    state.jobStages.set(job.id, job.stage);
  }
}

async function loadJobs() {
  stopPolling();
  const request = ++state.jobsRequest;
  let page;
  try {
    page = await api(`v1/api/jobs?limit=${state.jobsLimit}`);
  } catch (err) {
    if (request !== state.jobsRequest) return;
    failed(err, "Could not load the jobs");
    if (state.token) state.pollTimer = setTimeout(loadJobs, 5 * POLL_MS);  // try again
    return;
  }
  if (!state.token || request !== state.jobsRequest) return;
  const focused = document.activeElement?.dataset?.focus;
  $("jobs").tBodies[0].replaceChildren(...page.values.map(jobRow));
  if (focused) document.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  noteChanges(page.values);
  const running = page.values.filter((j) => !FINAL.has(j.stage)).length;
  $("jobs-empty").hidden = page.totalCount > 0;
  $("jobs-more").hidden = !page.hasNextPage;
  $("jobs-summary").textContent = page.totalCount === 0 ? "" :
    `${page.totalCount} job${page.totalCount === 1 ? "" : "s"}` +
    (running ? `, ${running} still running (updating every second).` : ".");
  $("jobs").setAttribute("aria-busy", running ? "true" : "false");
  if (running) state.pollTimer = setTimeout(loadJobs, POLL_MS);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

// -- user lookup -----------------------------------------------------------------------

function showView(name) {
  for (const view of ["tags", "segments", "user"]) {
    $(`view-${view}`).hidden = view !== name;
    if (view === name) $(`view-${view}-button`).setAttribute("aria-current", "page");
    else $(`view-${view}-button`).removeAttribute("aria-current");
  }
  $("jobs-view").hidden = name === "user";  // exports start from tags and segments
}

function renderIdentityPicker() {
  const picker = $("user-identity");
  const before = picker.value;
  const identities = state.catalog.filter((e) => e.group === "identities");
  picker.replaceChildren(...identities.map((e) =>
    el("option", { value: e.key.replace(/^id_/, ""), text: `${e.name} (${e.key})` })));
  if (before && identities.some((e) => e.key === `id_${before}`)) picker.value = before;
}

function facts(list, entries) {
  // a <dl>: name (with the key beneath) and value; a null value is a dash
  const nodes = entries.flatMap(([name, key, value]) => [
    el("dt", {}, el("span", { text: name }), " ", el("code", { class: "muted", text: key })),
    el("dd", { text: value == null ? "–" : Array.isArray(value) ? value.join(", ") : String(value) }),
  ]);
  $(list).replaceChildren(...nodes);
}

async function lookUp(event) {
  if (event) event.preventDefault();
  const key = $("user-identity").value;
  const value = $("user-value").value.trim();
  $("user-error").textContent = "";
  if (!value) {
    $("user-error").textContent = "Enter a value of the identity.";
    $("user-value").focus();
    return;
  }
  const path = `${encodeURIComponent(key)}/${encodeURIComponent(value)}`;
  let user;
  let events;
  let segments;
  try {
    [user, events, segments] = await Promise.all([
      api(`v1/api/users/${path}`), api(`v1/api/user_events/${path}?limit=50`),
      userSegments(key, value)]);
  } catch (err) {
    if (err.status === 401) return failed(err, "");
    $("user-error").textContent = `${err.code}: ${err.message}`;
    return;
  }
  state.lookedUp = [key, value];
  if (user.gioId === "0") {
    $("user-result").hidden = true;
    $("user-error").textContent = `No user holds ${value} for ${key}.`;
    return;
  }
  const names = new Map(state.catalog.map((e) => [e.key, e]));
  const identities = Object.entries(user.identifications).map(([k, v]) => {
    const catalogKey = `id_${k.replace(/^ids_/, "")}`;
    return [names.get(catalogKey)?.name ?? catalogKey, catalogKey, v];
  });
  const properties = (group) => Object.entries(user.properties)
    .filter(([k]) => names.get(k)?.group === group)
    .map(([k, v]) => [names.get(k).name, k, v]);
  facts("user-identities", identities);
  facts("user-attributes", properties("attributes"));
  facts("user-tags", properties("tags"));
  renderUserSegments(segments);
  $("user-summary").textContent = `gio_id ${user.gioId}, found by ${key} = ${value}.`;
  $("user-events-summary").textContent = events.values.length
    ? `The ${events.values.length} most recent events, newest first` +
      (events.values.length === events.limit ? ` (at most ${events.limit}).` : ".")
    : "No events recorded for this user.";
  $("user-events").replaceChildren(...events.values.map((e) => el("li", { "data-event": e.id ?? "" },
    el("time", { datetime: e.time, text: when(e.time) }), " ",
    el("strong", { text: e.name }), " ", el("code", { class: "muted", text: e.event }),
    e.attributes.length ? el("span", { class: "attrs", text: e.attributes
      .map((a) => `${a.name}: ${shown(a.value)}`).join(" · ") }) : null)));
  $("user-result").hidden = false;
  announce(`User ${user.gioId}: ${events.values.length} recent events.`);
}

// -- wiring ----------------------------------------------------------------------------

function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("language").addEventListener("change", async (ev) => {
    state.language = ev.target.value;
    sessionStorage.setItem(KEY_LANGUAGE, state.language);
    await Promise.all([loadTags(), loadCatalog()]);
    renderIdentityPicker();
    relabelSegments();
    if (state.shownTag) openTag(state.shownTag, { focus: false });
    if (state.lookedUp && !$("view-user").hidden) lookUp();
  });
  $("tag-close").addEventListener("click", () => {
    const key = state.shownTag;
    closeTag();
    document.querySelector(`[data-tag="${CSS.escape(key)}"]`)?.focus();
  });
  $("tag-compute").addEventListener("click", computeNow);
  $("tag-export").addEventListener("click", () => {
    const tag = state.tags.get(state.shownTag);
    if (tag) openExport(tag);
  });
  $("view-tags-button").addEventListener("click", () => showView("tags"));
  $("view-segments-button").addEventListener("click", () => {
    showView("segments");
    $("segments-title").focus();
  });
  $("tag-portrait").addEventListener("click", () => openPortrait(`tag:${state.shownTag}`));
  $("view-user-button").addEventListener("click", () => {
    showView("user");
    $("user-value").focus();
  });
  $("user-form").addEventListener("submit", lookUp);
  wireSegments();
  $("property-search").addEventListener("input", renderPropertyList);
  $("export-form").addEventListener("change", (ev) => {
    if (ev.target.name === "fileFormat") toggleHeaderType();
  });
  $("export-form").addEventListener("submit", submitExport);
  $("export-cancel").addEventListener("click", () => $("export-dialog").close());
  $("jobs-refresh").addEventListener("click", loadJobs);
  $("jobs-more").addEventListener("click", () => {
    state.jobsLimit += JOBS_PAGE;
    loadJobs();
  });
  if (state.token) {
    enterWorkspace();
  } else {
    $("token").focus();
  }
}

start();
