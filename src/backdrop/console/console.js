// The review console. Plain DOM: every text from a user or the API goes in as a text node
// (textContent, append), never as markup, and the page's CSP forbids inline script and style.

// sessionStorage only: gone with the tab, and sent nowhere but in the x-api-key header.
const KEY = "backdrop.apiKey";
const REVIEWER = "backdrop.reviewer";
const PAGE = 50;

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"), key: $("key"), forget: $("forget"), reviewer: $("reviewer"),
  filters: $("filters"), batch: $("batch"), review: $("review"), progress: $("progress"),
  status: $("status"), queue: $("queue"), more: $("more"),
  viewer: $("viewer"), viewerImg: $("viewer-img"), viewerCaption: $("viewer-caption"),
  rejectDialog: $("reject-dialog"), rejectForm: $("reject-form"), reason: $("reason"),
  regenerateDialog: $("regenerate-dialog"), regenerateForm: $("regenerate-form"),
  prompt: $("prompt"),
};

const state = {
  items: [], cursor: null, current: -1, busy: false, loads: 0, target: null, counts: null,
};

class ApiError extends Error {
  constructor(status, error) {
    super(typeof error.message === "string" && error.message ? error.message : `HTTP ${status}`);
    this.status = status;
    this.code = typeof error.code === "string" ? error.code : "";
    this.details = Array.isArray(error.details) ? error.details : [];
  }
}

async function api(path, { method = "GET", body } = {}) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new ApiError(0, { code: "no_key", message: "enter your API key first" });
  const headers = { "x-api-key": key, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    // Relative to <base>/console: <base>/v1/... locally and under API Gateway's stage.
    response = await fetch(new URL(path, location.href), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
  } catch {
    throw new ApiError(0, { code: "network", message: "the API could not be reached" });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data && typeof data.error === "object" && data.error ? data.error : {
      message: data && typeof data.message === "string" ? data.message : "",
    };
    throw new ApiError(response.status, error);
  }
  return data;
}

// Elements from text only: strings become text nodes.
function h(tag, className, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

function button(text, onClick, className) {
  const element = h("button", className, text);
  element.type = "button";
  element.addEventListener("click", onClick);
  return element;
}

const isWebUrl = (url) =>
  typeof url === "string" && (url.startsWith("https:") || url.startsWith("http:"));

function image(url, alt) {
  const img = document.createElement("img");
  img.alt = alt;
  img.decoding = "async";
  if (isWebUrl(url)) img.src = url;
  else img.className = "missing";
  return img;
}

function say(text, error) {
  ui.status.classList.toggle("error", Boolean(error));
  ui.status.replaceChildren(h("p", null, text));
  if (error instanceof ApiError && error.details.length) {
    ui.status.append(h("ul", null, ...error.details.map((d) => h("li", null, describe(d)))));
  }
}

// A detail is {field, reason} as a rule; a few codes add other facts (a status, a review).
function describe(detail) {
  if (detail?.field || detail?.reason) {
    return `${detail.field ?? "request"}${detail.reason ? `: ${detail.reason}` : ""}`;
  }
  return Object.entries(detail ?? {}).filter(([, v]) => typeof v !== "object")
    .map(([k, v]) => `${k}: ${v}`).join(", ");
}

function fail(what, error) {
  const code = error instanceof ApiError && error.code ? ` (${error.code})` : "";
  say(`${what}: ${error.message}${code}`, error);
}

// --- the queue ---------------------------------------------------------------------------

const find = (id) => state.items.findIndex((item) => item.id === id);
const last = (item) => item.review?.history?.at(-1);
const regenerating = (item) =>
  item.review?.status === "pending" && last(item)?.decision === "regenerate";
const needsReview = (item) => item.review?.status === "pending" && !regenerating(item);
const variantNumber = (item, index) => item.results.findIndex((r) => r.index === index) + 1;

function reviewText(item) {
  const review = item.review;
  if (!review) return `${item.status}, not held for review`;
  const entry = last(item);
  const by = entry?.reviewer ? ` by ${entry.reviewer}` : "";
  switch (review.status) {
    case "pending":
      return regenerating(item) ? `Regenerating as ${entry.job_id ?? "a new job"}${by}` : "Pending";
    case "approved": {
      const published = review.published_key ? `, published as ${review.published_key}` : "";
      return `Approved variant ${variantNumber(item, review.chosen)}${published}${by}`;
    }
    case "rejected":
      return `Rejected${review.reason ? `: ${review.reason}` : ""}${by}`;
    case "superseded":
      return `Superseded by ${item.children?.at(-1) ?? "a regeneration"}`;
    default:
      return String(review.status);
  }
}

function render(item) {
  const id = item.id;
  const article = h("article", "product");
  article.tabIndex = -1;
  article.dataset.id = id;
  article.dataset.review = item.review?.status ?? "none";
  const title = h("h2", null, `Job ${id}`);
  title.id = `job-${id}`;
  article.setAttribute("aria-labelledby", title.id);
  article.addEventListener("focusin", () => select(find(id), false));

  const photos = h("div", "photos",
    h("figure", "source", image(item.source_thumbnail_url || item.source_url, "Input photo"),
      h("figcaption", null, "Input")));
  item.results.forEach((result, n) => {
    const zoom = button(null, () => enlarge(id, n), "zoom");
    zoom.append(image(result.thumbnail_url || result.url, `Variant ${n + 1}`));
    zoom.setAttribute("aria-label", `Enlarge variant ${n + 1}`);
    const chosen = item.review?.status === "approved" && item.review.chosen === result.index;
    photos.append(h("figure", chosen ? "variant chosen" : "variant", zoom,
      h("figcaption", null, `${n + 1} · seed ${result.seed ?? "none"}`),
      button(`Approve ${n + 1}`, () => approve(id, n), "approve")));
  });

  const details = h("dl", "details",
    h("dt", null, "Prompt"), h("dd", "prompt", item.request?.prompt ?? ""));
  if (item.request?.negative_prompt) {
    details.append(h("dt", null, "Negative prompt"), h("dd", null, item.request.negative_prompt));
  }
  for (const [key, value] of Object.entries(item.metadata ?? {})) {
    details.append(h("dt", "meta", key), h("dd", "meta", String(value)));
  }
  if (item.parent_id) details.append(h("dt", null, "Regenerates"), h("dd", null, item.parent_id));

  const decidable = item.review && item.review.status !== "superseded";
  const actions = h("p", "actions",
    button("Reject", () => askReject(id)), button("Regenerate", () => askRegenerate(id)));
  for (const control of actions.querySelectorAll("button")) control.disabled = !decidable;
  for (const control of photos.querySelectorAll("button.approve")) control.disabled = !decidable;

  article.append(h("header", null, title, h("span", "state", reviewText(item))),
    photos, details, actions);
  const history = item.review?.history ?? [];
  if (history.length) {
    article.append(h("details", "history", h("summary", null, `History (${history.length})`),
      h("ol", null, ...history.map((entry) => h("li", null, historyText(entry))))));
  }
  return article;
}

function historyText(entry) {
  const index = Number.isInteger(entry.index) ? `result ${entry.index}` : "";
  const by = entry.reviewer ? `by ${entry.reviewer}` : "";
  const child = entry.job_id ? `as ${entry.job_id}` : "";
  return [entry.at, entry.decision, index, entry.reason, by, child].filter(Boolean).join(" ");
}

function update(view) {
  const index = find(view.id);
  if (index < 0) return;
  state.items[index] = view;
  const old = ui.queue.children[index];
  const focused = old.contains(document.activeElement);
  const article = render(view);
  old.replaceWith(article);
  if (focused) article.focus({ preventScroll: true }); // not lost to the page with the old one
  select(state.current, false);
}

function select(index, focus = true) {
  if (index < 0 || index >= state.items.length) return;
  state.current = index;
  [...ui.queue.children].forEach((article, i) => {
    article.classList.toggle("current", i === index);
    if (i === index) article.setAttribute("aria-current", "true");
    else article.removeAttribute("aria-current");
  });
  if (focus) {
    const article = ui.queue.children[index];
    article.focus({ preventScroll: true });
    article.scrollIntoView({ block: "nearest" });
  }
}

function nextPending(from) {
  const order = [...state.items.keys()];
  const after = order.slice(from + 1).concat(order.slice(0, from + 1));
  return after.find((i) => needsReview(state.items[i])) ?? -1;
}

async function loadQueue(more = false) {
  const params = new URLSearchParams({ review: ui.review.value, limit: String(PAGE) });
  if (ui.batch.value) params.set("batch_id", ui.batch.value);
  if (more && state.cursor) params.set("cursor", state.cursor);
  const load = ++state.loads; // a newer load (filters changed) wins over an older answer
  try {
    const page = await api(`v1/generations?${params}`);
    if (load !== state.loads) return;
    if (!more) clearQueue();
    for (const item of page.items) {
      if (find(item.id) >= 0) continue;
      state.items.push(item);
      ui.queue.append(render(item));
    }
    state.cursor = page.next_cursor ?? null;
    ui.more.hidden = !state.cursor;
    if (state.current < 0 && state.items.length) select(Math.max(nextPending(-1), 0), false);
    say(state.items.length ? `${state.items.length} loaded` : "Nothing here with these filters");
  } catch (error) {
    if (load === state.loads) fail("Could not load the queue", error);
  }
  await progress();
}

function clearQueue() {
  state.items = [];
  state.cursor = null;
  state.current = -1;
  ui.queue.replaceChildren();
  ui.more.hidden = true;
}

// A batch's review counts: read with the batch when it is chosen, then kept up to date here
// as this page decides (others' decisions show on the next reload).
async function progress() {
  const batch = ui.batch.value;
  state.counts = null;
  if (!batch) {
    showProgress();
    return;
  }
  try {
    const counts = (await api(`v1/batches/${encodeURIComponent(batch)}`)).review;
    if (batch !== ui.batch.value) return;
    state.counts = counts ? { ...counts } : false;
    showProgress();
  } catch (error) {
    ui.progress.textContent = "";
    fail("Could not read the batch", error);
  }
}

function showProgress() {
  const counts = state.counts;
  if (counts === false) {
    ui.progress.textContent = "This batch's jobs are not held for review";
    return;
  }
  if (!counts) {
    const pending = state.items.filter((item) => item.review?.status === "pending").length;
    ui.progress.textContent = sessionStorage.getItem(KEY) ? `${pending} pending loaded` : "";
    return;
  }
  const n = (name) => Number(counts[name]) || 0;
  const total = n("pending") + n("approved") + n("rejected") + n("superseded");
  ui.progress.textContent = `${total - n("pending")} of ${total} reviewed`;
}

// A decision moved one job from one review status to another.
function counted(before, after) {
  const counts = state.counts;
  if (counts && before && after && before !== after) {
    counts[before] = (Number(counts[before]) || 0) - 1;
    counts[after] = (Number(counts[after]) || 0) + 1;
  }
  showProgress();
}

async function loadBatches() {
  try {
    const page = await api(`v1/batches?limit=${PAGE}`);
    const chosen = ui.batch.value;
    ui.batch.replaceChildren(new Option("All batches", ""));
    for (const batch of page.items) {
      const name = typeof batch.metadata?.name === "string" ? `${batch.metadata.name} · ` : "";
      const total = batch.counts?.total ?? "?";
      const label = `${name}${batch.id} · ${batch.status} · ${total} jobs`;
      ui.batch.append(new Option(label, batch.id));
    }
    ui.batch.value = chosen;
    if (ui.batch.value !== chosen) ui.batch.value = "";
  } catch (error) {
    fail("Could not list the batches", error);
  }
}

async function start() {
  // Side by side: the queue does not wait for the list of batches.
  await Promise.all([loadBatches(), loadQueue()]);
}

// --- decisions ---------------------------------------------------------------------------

async function decide(id, body, done) {
  if (find(id) < 0) return;
  if (state.busy) {
    say("Wait: the last decision is still being recorded", true);
    return;
  }
  const reviewer = ui.reviewer.value.trim();
  if (reviewer) body.reviewer = reviewer;
  // Decided on the review as shown: if another reviewer decided since, the API says so.
  body.review_version = state.items[find(id)].review?.history?.length ?? 0;
  state.busy = true;
  try {
    const view = await api(`v1/generations/${encodeURIComponent(id)}/review`, {
      method: "POST", body,
    });
    const before = state.items[find(id)].review?.status;
    if (body.decision === "regenerate") await reload(id, view.id);
    else update(view);
    say(done(view));
    counted(before, state.items[find(id)]?.review?.status);
    const next = nextPending(find(id));
    select(next >= 0 ? next : find(id));
  } catch (error) {
    if (error.status === 409) {
      const why = error.code === "decision_changed" ? "someone else decided first"
        : "the job cannot take this decision now";
      fail(`Not recorded: ${why}, so job ${id} was reloaded`, error);
      await reload(id);
    } else {
      fail(`Could not ${body.decision} job ${id}`, error);
    }
  } finally {
    state.busy = false;
  }
}

// The reviewed job as it is now; after a regeneration, without the API, as it must be.
async function reload(id, child) {
  try {
    update(await api(`v1/generations/${encodeURIComponent(id)}`));
  } catch (error) {
    const item = state.items[find(id)];
    if (child && item?.review) {
      const history = [...(item.review.history ?? []), { decision: "regenerate", job_id: child }];
      const children = [...(item.children ?? []), child];
      update({ ...item, children, review: { ...item.review, history } });
    } else {
      fail(`Could not reload job ${id}`, error);
    }
  }
}

function approve(id, n) {
  const item = state.items[find(id)];
  if (!item) return;
  const result = item.results[n];
  if (!result) {
    say(`Job ${id} has ${item.results.length} variants: there is no variant ${n + 1}`, true);
    return;
  }
  decide(id, { decision: "approve", index: result.index },
    (view) => `Job ${id}: ${reviewText(view)}`);
}

function askReject(id) {
  if (find(id) < 0) return;
  state.target = id;
  ui.reason.value = "";
  ui.rejectDialog.showModal();
  ui.reason.focus();
}

function askRegenerate(id) {
  const item = state.items[find(id)];
  if (!item) return;
  state.target = id;
  ui.prompt.value = item.request?.prompt ?? "";
  ui.regenerateDialog.showModal();
  ui.prompt.select();
}

function enlarge(id, n) {
  const item = state.items[find(id)];
  const result = item?.results[n];
  if (!result) return;
  select(find(id), false);
  ui.viewerImg.removeAttribute("src");
  if (isWebUrl(result.url)) ui.viewerImg.src = result.url;
  ui.viewerImg.alt = `Variant ${n + 1} of job ${id}`;
  ui.viewerCaption.textContent = `Variant ${n + 1} of job ${id} · seed ${result.seed ?? "none"}`;
  ui.viewer.showModal();
}

// Submitting never navigates (the CSP's form-action 'none'): each form is handled here.
ui.rejectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  ui.rejectDialog.close();
  const id = state.target;
  const reason = ui.reason.value.trim();
  decide(id, { decision: "reject", ...(reason && { reason }) }, () => `Rejected job ${id}`);
});

ui.regenerateForm.addEventListener("submit", (event) => {
  event.preventDefault();
  ui.regenerateDialog.close();
  const id = state.target;
  const prompt = ui.prompt.value.trim();
  decide(id, { decision: "regenerate", ...(prompt && { prompt }) },
    (view) => `Job ${id}: regenerating as new job ${view.id}`);
});

for (const dialog of [ui.viewer, ui.rejectDialog, ui.regenerateDialog]) {
  for (const close of dialog.querySelectorAll(".close")) {
    close.addEventListener("click", () => dialog.close());
  }
}
// A click on the backdrop (the dialog itself, not its content) closes the large view.
ui.viewer.addEventListener("click", (event) => {
  if (event.target === ui.viewer) ui.viewer.close();
});

// --- key, reviewer, filters, keyboard ---------------------------------------------------

function showKey() {
  const kept = Boolean(sessionStorage.getItem(KEY));
  ui.key.required = !kept;
  ui.key.placeholder = kept ? "kept for this tab" : "";
  ui.forget.disabled = !kept;
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.key.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  ui.key.value = "";
  showKey();
  // Straight to the queue: the next key pressed is a decision, not more typing.
  start().then(() => select(state.current));
});

ui.forget.addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  state.loads++;
  clearQueue();
  ui.batch.replaceChildren(new Option("All batches", ""));
  ui.progress.textContent = "";
  showKey();
  say("Key forgotten. Enter a key to load the queue.");
  ui.key.focus();
});

ui.reviewer.value = sessionStorage.getItem(REVIEWER) ?? "";
ui.reviewer.addEventListener("input", () => {
  if (ui.reviewer.value.trim()) sessionStorage.setItem(REVIEWER, ui.reviewer.value);
  else sessionStorage.removeItem(REVIEWER);
});

ui.filters.addEventListener("submit", (event) => {
  event.preventDefault();
  loadQueue();
});
ui.batch.addEventListener("change", () => loadQueue());
ui.review.addEventListener("change", () => loadQueue());
ui.more.addEventListener("click", () => loadQueue(true));

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  // Typing is never a shortcut, nor is a key meant for an open dialog.
  const typing = "input, textarea, select, [contenteditable]";
  if (event.target instanceof Element && event.target.closest(typing)) return;
  if (document.querySelector("dialog[open]")) return;
  const item = state.items[state.current];
  const key = event.key;
  // A held key decides once, not on every product it would reach.
  if (event.repeat && key !== "ArrowRight" && key !== "ArrowLeft") return;
  if (/^[1-9]$/.test(key)) {
    if (item) approve(item.id, Number(key) - 1);
  } else if (key === "x" || key === "X") {
    if (item) askReject(item.id);
  } else if (key === "r" || key === "R") {
    if (item) askRegenerate(item.id);
  } else if (key === "ArrowRight" || key === "ArrowLeft") {
    select(state.current + (key === "ArrowRight" ? 1 : -1));
  } else {
    return;
  }
  event.preventDefault();
});

showKey();
if (sessionStorage.getItem(KEY)) start();
else say("Enter your API key to load the queue.");
