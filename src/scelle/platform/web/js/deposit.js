// The page "Déposer une offre": a company chooses the files of each envelope,
// the page checks the tender's recipients, seals every envelope in a worker and
// uploads it (tus), then checks the platform's signed receipt and offers it.
// The page's sentences come from the platform's catalogue (the template's
// #deposit-messages), in the user's language.

import { checkReceipt, checkRecipients } from "./checks.js";
import { checkReceiptLog } from "./log.js";
import { forget, keep, pendingKey, recall } from "./pending.js";
import { passwordProblem } from "./proof-kit.js";
import { envelopeSize, freshKeys, plannedArchiveSize } from "./seal.js";
import { MAX_FILES, nameProblem } from "./zip.js";

const root = document.getElementById("deposit");
const config = JSON.parse(document.getElementById("deposit-config").textContent);
const messages = JSON.parse(document.getElementById("deposit-messages").textContent);
const form = document.getElementById("deposit-form");
const startButton = document.getElementById("deposit-start");
const pauseButton = document.getElementById("deposit-pause");
const resumeButton = document.getElementById("deposit-resume");
const stateLine = document.getElementById("deposit-state");
const totalLine = document.getElementById("deposit-total");
const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

/** A sentence of the catalogue with its {placeholders} filled. */
function say(code, values = {}) {
  const template = messages[code] ?? messages.internal;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** A size as the pages write it (Django's filesizeformat: 1024-based, its words). */
function size(bytes) {
  if (bytes < 1024) return config.bytes.replace("%(size)d", String(Math.round(bytes)));
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < config.units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const number = value.toLocaleString(document.documentElement.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return config.units[unit].replace("%s", number);
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "…";
  const minutes = Math.floor(seconds / 60);
  return minutes ? say("minutes", { minutes, seconds: Math.round(seconds % 60) }) : say("seconds", { seconds: Math.round(seconds) });
}

function showState(code, values, kind = "info") {
  stateLine.textContent = say(code, values);
  stateLine.className = `banner ${kind}`;
  stateLine.hidden = false;
}

// --- choosing files -----------------------------------------------------------------

const envelopes = [...root.querySelectorAll("fieldset.envelope")].map((fieldset) => ({
  kind: fieldset.dataset.kind,
  fieldset,
  entries: [],
}));

/** Files of a chosen folder are named from inside it, as `scelle deposit` names them. */
function relativeName(file) {
  const path = file.webkitRelativePath || file.name;
  const parts = path.split("/");
  return parts.length > 1 ? parts.slice(1).join("/") : path;
}

async function entriesOfDrop(items) {
  const found = [];
  const walk = async (entry, path) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push({ name: path ? `${path}/${file.name}` : file.name, file });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      const inside = path ? `${path}/${entry.name}` : "";
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, inside);
      }
    }
  };
  for (const item of items) {
    const entry = item.webkitGetAsEntry?.();
    if (entry) await walk(entry, "");
  }
  return found;
}

function addEntries(envelope, added) {
  const problems = [];
  const names = new Set(envelope.entries.map((entry) => entry.name.normalize("NFC").toLowerCase()));
  for (const entry of added) {
    const problem = nameProblem(entry.name);
    const folded = entry.name.normalize("NFC").toLowerCase();
    if (problem) problems.push(say(`name-${problem}`, { name: entry.name }));
    else if (names.has(folded)) problems.push(say("name-twice", { name: entry.name }));
    else {
      names.add(folded);
      envelope.entries.push(entry);
    }
  }
  if (envelope.entries.length > MAX_FILES) {
    envelope.entries.length = MAX_FILES;
    problems.push(say("too-many-files", { max: MAX_FILES }));
  }
  render(envelope, problems);
}

function render(envelope, problems = []) {
  const list = envelope.fieldset.querySelector("[data-role=list]");
  list.replaceChildren(
    ...envelope.entries.map((entry, index) => {
      const item = document.createElement("li");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = say("remove");
      remove.setAttribute("aria-label", say("remove-file", { name: entry.name }));
      remove.addEventListener("click", () => {
        envelope.entries.splice(index, 1);
        render(envelope);
      });
      item.append(`${entry.name} (${size(entry.file.size)}) `, remove);
      return item;
    }),
  );
  const status = envelope.fieldset.querySelector("[data-role=status]");
  status.textContent = problems.join(" ");
  status.className = problems.length ? "error" : "";
  updateTotal();
}

function sizes() {
  const infos = recipients ? recipients.infosLength : 0;
  return envelopes.map((envelope) =>
    envelopeSize(
      infos,
      plannedArchiveSize(
        { tender: config.reference, envelope: envelope.kind, bidder: config.bidder },
        envelope.entries.map((entry) => ({ name: entry.name, size: entry.file.size })),
      ),
    ),
  );
}

function updateTotal() {
  const total = sizes().reduce((sum, value) => sum + value, 0);
  const chosen = envelopes.every((envelope) => envelope.entries.length);
  totalLine.textContent = say("total", { total: size(total), limit: size(config.maxBytes) });
  totalLine.className = total > config.maxBytes ? "error" : "";
  startButton.disabled = !chosen || total > config.maxBytes || running || refused;
}

for (const envelope of envelopes) {
  const { fieldset } = envelope;
  for (const input of fieldset.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", () => {
      addEntries(
        envelope,
        [...input.files].map((file) => ({ name: relativeName(file), file })),
      );
      input.value = "";
    });
  }
  const zone = fieldset.querySelector("[data-role=drop]");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addEntries(envelope, await entriesOfDrop([...event.dataTransfer.items]));
  });
}

// --- talking to the platform ----------------------------------------------------------

let token = null;

async function api(path, options = {}) {
  if (token === null) {
    const answer = await fetch(config.tokenUrl, { method: "POST", headers: { "X-CSRFToken": csrf } });
    if (!answer.ok) throw Object.assign(new Error("token"), { code: "session" });
    token = (await answer.json()).token;
  }
  const response = await fetch(path, {
    ...options,
    headers: { ...options.headers, Authorization: `Bearer ${token}`, "Accept-Language": document.documentElement.lang },
  });
  const body = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    throw Object.assign(new Error("refused"), { code: "refused", values: { detail: body?.detail ?? response.status } });
  }
  return body;
}

async function createUpload(kind, length) {
  if (token === null) await api(config.caUrl);
  const metadata = [
    ["tender", config.tender],
    ["envelope", kind],
  ]
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(value)))}`)
    .join(",");
  const response = await fetch(config.uploadsUrl, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Tus-Resumable": "1.0.0",
      "Upload-Length": String(length),
      "Upload-Metadata": metadata,
      "Accept-Language": document.documentElement.lang,
    },
  });
  if (response.status !== 201) {
    const body = await response.json().catch(() => null);
    throw Object.assign(new Error("refused"), { code: "refused", values: { detail: body?.detail ?? response.status } });
  }
  return new URL(response.headers.get("Location"), location.href).href;
}

async function uploadStillThere(url) {
  const response = await fetch(url, { method: "HEAD", headers: { Authorization: `Bearer ${token}`, "Tus-Resumable": "1.0.0" } });
  return response.ok;
}

// --- the worker ---------------------------------------------------------------------------

const worker = new Worker(config.workerUrl, { type: "module" });
let nextRequest = 1;
const waiting = new Map();
worker.onmessage = ({ data }) => {
  const request = waiting.get(data.id);
  if (!request) return;
  if (data.op === "progress") request.progress(data);
  else {
    waiting.delete(data.id);
    if (data.op === "failed") request.reject(Object.assign(new Error(data.message), data));
    else request.resolve(data);
  }
};

function ask(message, progress = () => {}) {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject, progress });
    worker.postMessage({ ...message, id });
  });
}

// --- depositing ---------------------------------------------------------------------------

let recipients = null;
let running = false;
/** True once the tender's recipients were refused: nothing may be sealed to them. */
let refused = false;
let tenderAnswer = null;
let authority = null;

async function prepare() {
  try {
    tenderAnswer = await api(config.tenderUrl);
    authority = (await api(config.caUrl)).certificate_pem;
    if (tenderAnswer.status !== "published" || new Date(tenderAnswer.deadline) <= new Date()) {
      refused = true;
      showState("closed", {}, "error");
      return;
    }
    recipients = await checkRecipients(tenderAnswer, authority, "", new Date());
    const infos = await freshKeys(recipients.ders, recipients.commission);
    recipients.infosLength = infos.recipientInfos.length;
    showState("recipients-checked", { rsf: recipients.rsf }, "ok");
    const pending = await recall(pendingKey(config.user, config.tender));
    if (pending) showState("pending", { rsf: recipients.rsf }, "info");
  } catch (error) {
    if (error.code === "certificate-referenced") {
      recipients = null;
      showState(error.code, error.values, "info");
    } else {
      refused = true;
      fail(error);
    }
  }
  updateTotal();
}

function fail(error) {
  running = false;
  pauseButton.hidden = resumeButton.hidden = true;
  showState(error.code in messages ? error.code : "internal", error.values ?? { detail: error.message }, "error");
  updateTotal();
}

function progressOf(envelope) {
  const bar = envelope.fieldset.querySelector("progress");
  const status = envelope.fieldset.querySelector("[data-role=status]");
  bar.hidden = false;
  const started = performance.now();
  let firstSent = null;
  return {
    hashing(done, total) {
      bar.max = total || 1;
      bar.value = done;
      status.textContent = say("hashing", { done: size(done), total: size(total) });
    },
    sending(sent, total) {
      if (firstSent === null) firstSent = { sent, at: performance.now() };
      const seconds = (performance.now() - firstSent.at) / 1000;
      const speed = seconds > 0.5 ? (sent - firstSent.sent) / seconds : NaN;
      bar.max = total;
      bar.value = sent;
      status.textContent = say("sending", {
        sent: size(sent),
        total: size(total),
        speed: Number.isFinite(speed) ? size(speed) : "…",
        left: duration((total - sent) / speed),
      });
    },
    done(sizeBytes) {
      bar.value = bar.max;
      status.textContent = say("envelope-sent", { size: size(sizeBytes), seconds: ((performance.now() - started) / 1000).toFixed(1) });
    },
  };
}

async function deposit() {
  running = true;
  updateTotal();
  const expect = form.elements.expect_rsf?.value ?? "";
  recipients = await checkRecipients(tenderAnswer, authority, expect, new Date());
  const key = pendingKey(config.user, config.tender);
  let pending = await recall(key);
  const hashedByKind = {};
  for (const envelope of envelopes) {
    const total = envelope.entries.reduce((sum, entry) => sum + entry.file.size, 0);
    const progress = progressOf(envelope);
    let done = 0;
    const { files } = await ask({ op: "hash", entries: envelope.entries }, ({ hashed }) => {
      done += hashed;
      progress.hashing(done, total);
    });
    hashedByKind[envelope.kind] = { files, progress };
  }
  if (pending) {
    // The same files, or nothing: a resumed envelope must be the very same bytes.
    for (const saved of pending.envelopes) {
      const now = hashedByKind[saved.kind]?.files ?? [];
      const before = new Map(saved.files.map((file) => [file.name, file]));
      for (const file of now) {
        const old = before.get(file.name);
        if (old && (old.sha256 !== file.sha256 || old.size !== file.size)) {
          throw Object.assign(new Error("changed"), { code: "file-changed-since", values: { name: file.name } });
        }
      }
      const names = (list) => list.map((file) => file.name).join("\n");
      if (names(now) !== names(saved.files)) {
        throw Object.assign(new Error("changed"), { code: "files-differ", values: { kind: saved.kind } });
      }
      if (!(await uploadStillThere(saved.upload))) pending = null;
    }
    if (pending && pending.rsf !== recipients.rsf) pending = null;
  }
  if (!pending) {
    const planned = [];
    for (const envelope of envelopes) {
      const { files } = hashedByKind[envelope.kind];
      const keys = await freshKeys(recipients.ders, recipients.commission);
      const meta = { tender: config.reference, envelope: envelope.kind, bidder: config.bidder };
      const length = envelopeSize(keys.recipientInfos.length, plannedArchiveSize(meta, files));
      planned.push({ kind: envelope.kind, keys, length, files: files.map(({ name, size, sha256 }) => ({ name, size, sha256 })) });
    }
    const total = planned.reduce((sum, item) => sum + item.length, 0);
    if (total > config.maxBytes) throw Object.assign(new Error("large"), { code: "too-large", values: { total: size(total), limit: size(config.maxBytes) } });
    for (const item of planned) item.upload = await createUpload(item.kind, item.length);
    pending = { rsf: recipients.rsf, envelopes: planned };
    await keep(key, pending);
  } else {
    showState("resuming", {}, "info");
  }
  pauseButton.hidden = false;
  const sent = [];
  for (const item of pending.envelopes) {
    const { files, progress } = hashedByKind[item.kind];
    const meta = { tender: config.reference, envelope: item.kind, bidder: config.bidder };
    const answer = await ask(
      { op: "seal", keys: item.keys, meta, files, upload: item.upload, token, size: item.length },
      ({ sent: bytes }) => bytes !== undefined && progress.sending(bytes, item.length),
    );
    progress.done(answer.size);
    sent.push({ kind: item.kind, size: answer.size, sha256: answer.sha256, upload: item.upload.split("/").pop() });
  }
  pauseButton.hidden = resumeButton.hidden = true;
  showState("finalising", {}, "info");
  const answer = await api(config.finaliseUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ envelopes: sent.map(({ kind, upload, sha256 }) => ({ kind, upload, sha256 })) }),
  });
  const commission = recipients.commission
    ? { threshold: recipients.commission.threshold, members: recipients.memberFingerprints }
    : null;
  const body = await checkReceipt(answer.receipt, authority, sent, recipients.rsf, recipients.fingerprints, commission);
  await forget(key);
  const contentKeys = Object.fromEntries(pending.envelopes.map((item) => [item.kind, item.keys.contentKey]));
  showReceipt(answer, body);
  offerProofKit(answer, body, contentKeys);
  await showLog(answer, body);
}

/** The receipt's entry in the transparency log, checked here against the log now and
 * what this browser saw last; a log that misbehaves is named, with its two checkpoints. */
async function showLog(answer, body) {
  const line = document.getElementById("log-state");
  const evidence = document.getElementById("log-evidence");
  line.textContent = say("log-checking");
  try {
    const checked = await checkReceiptLog(answer.receipt, body, config.logUrl);
    if (checked === null) {
      line.hidden = true;
      return;
    }
    line.textContent = say("log-checked", checked);
    line.className = "ok";
  } catch (error) {
    line.textContent = say(error.code in messages ? error.code : "internal", error.values ?? { detail: error.message });
    line.className = "banner error";
    if (error.values?.earlier) {
      evidence.textContent = `${error.values.earlier}\n${error.values.later}`;
      evidence.hidden = false;
    }
  }
}

/** "Télécharger le dossier de preuve": the kit is made here, under the company's password. */
function offerProofKit(answer, body, contentKeys) {
  const kitForm = document.getElementById("proof-kit-form");
  const state = document.getElementById("proof-kit-state");
  const tell = (code, kind) => {
    state.textContent = say(code, { min: 12, long: 20 });
    state.className = kind;
  };
  kitForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = kitForm.elements.kit_password.value;
    if (password !== kitForm.elements.kit_password_again.value) return tell("kit-password-differ", "error");
    const problem = passwordProblem(password);
    if (problem) return tell(problem, "error");
    const button = kitForm.querySelector("button");
    button.disabled = true;
    tell("kit-making", "");
    try {
      const envelopes = body.envelopes.map(({ kind, size, sha256 }) => ({ kind, size, sha256 }));
      const { kit } = await ask({ op: "proof-kit", receipt: answer.receipt, envelopes, contentKeys, password });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([kit], { type: "application/json" }));
      link.download = `dossier-de-preuve-${answer.id}.json`;
      document.body.append(link);
      link.click();
      link.remove();
      kitForm.reset();
      tell("kit-ready", "ok");
    } catch (error) {
      tell("internal", "error");
    } finally {
      button.disabled = false;
    }
  });
}

function showReceipt(answer, body) {
  running = false;
  const section = document.getElementById("deposit-receipt");
  const facts = section.querySelector("dl");
  const add = (term, value) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    facts.append(dt, dd);
  };
  facts.replaceChildren();
  add(say("receipt-tender"), body.tender);
  add(say("receipt-company"), body.bidder);
  add(say("receipt-time"), new Date(body.received_at).toLocaleString(document.documentElement.lang, { timeZone: config.timeZone, dateStyle: "long", timeStyle: "medium" }));
  for (const envelope of body.envelopes) {
    add(say("receipt-envelope", { kind: envelope.kind }), `${size(envelope.size)} — SHA-256 ${envelope.sha256}`);
  }
  add(say("receipt-rsf"), body.rsf ?? "");
  if (body.commission) add(say("receipt-commission"), say("commission-needed", { threshold: body.commission.threshold }));
  const link = section.querySelector("a[download]");
  link.href = URL.createObjectURL(new Blob([answer.receipt], { type: "application/json" }));
  link.download = `receipt-${answer.id}.json`;
  section.hidden = false;
  showState(body.late ? "deposited-late" : "deposited", {}, body.late ? "error" : "ok");
  form.hidden = true;
  section.querySelector("h2").focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (running) return;
  deposit().catch(fail);
});
pauseButton.addEventListener("click", () => {
  worker.postMessage({ op: "pause" });
  pauseButton.hidden = true;
  resumeButton.hidden = false;
  showState("paused", {}, "info");
});
resumeButton.addEventListener("click", () => {
  worker.postMessage({ op: "resume" });
  resumeButton.hidden = true;
  pauseButton.hidden = false;
  showState("resuming", {}, "info");
});
window.addEventListener("beforeunload", (event) => {
  if (running) event.preventDefault();
});

prepare();
