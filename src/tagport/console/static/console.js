// tagport console: sign in with a token, see the tags, export, follow the jobs.
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
  if (options.body) headers["Content-Type"] = "application/json";
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
  $("tags-title").setAttribute("tabindex", "-1");
  $("tags-title").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_TOKEN);
  state.token = null;
  stopPolling();
  state.jobStages.clear();
  $("tags").tBodies[0].replaceChildren();
  $("jobs").tBodies[0].replaceChildren();
  $("workspace").hidden = true;
  $("session-tools").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function enterWorkspace() {
  $("sign-in").hidden = true;
  $("sign-in-error").textContent = "";
  $("workspace").hidden = false;
  $("session-tools").hidden = false;
  $("language").value = state.language;
  await Promise.all([loadTags(), loadCatalog(), loadJobs()]);
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
  const rows = tags.map((tag) => {
    const measured = tag.detector.stage === "FINISH";
    return el("tr", {},
      el("th", { scope: "row", text: tag.name }),
      el("td", {}, el("code", { text: tag.key })),
      el("td", { text: valueType(tag.valueType) }),
      el("td", { class: "num", text: measured ? number(tag.detector.totalUsers) : "–" }),
      el("td", { class: "num", text: measured ? percent(tag.detector.usersRatio) : "–" }),
      el("td", { text: measured ? when(tag.detector.detectedAt) : "not measured yet" }),
      el("td", {}, el("button", {
        type: "button", text: "Export…", "aria-label": `Export ${tag.name}`,
        onclick: () => openExport(tag),
      })));
  });
  $("tags").tBodies[0].replaceChildren(...rows);
  $("tags-empty").hidden = tags.length > 0;
}

// -- the export dialog -----------------------------------------------------------------

const GROUPS = [["identities", "Identities"], ["attributes", "Attributes"], ["tags", "Tags"]];

async function loadCatalog() {
  try {
    const catalog = await api("v1/api/catalog");
    state.catalog = GROUPS.flatMap(([group]) =>
      catalog[group].map((e) => ({ ...e, group, type: valueType(e.valueType) })));
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
  $("export-tag").textContent = `Tag ${tag.key}: ${tag.detector.stage === "FINISH"
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
    const job = await api(`v1/api/user_tags/${encodeURIComponent(state.tag.key)}/export_jobs`,
                          { method: "POST", body: JSON.stringify(body) });
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

// -- wiring ----------------------------------------------------------------------------

function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("language").addEventListener("change", async (ev) => {
    state.language = ev.target.value;
    sessionStorage.setItem(KEY_LANGUAGE, state.language);
    await Promise.all([loadTags(), loadCatalog()]);
  });
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
