// The page "Ouvrir mon dépôt de test": fetch the published test key and each sealed
// envelope of the company's test deposit, open them in this page (open-test.js),
// and list the files with their fingerprints and a link to save each one.

import { OpenError, openTestEnvelope } from "./open-test.js";

const config = JSON.parse(document.getElementById("open-test-config").textContent);
const messages = JSON.parse(document.getElementById("open-test-messages").textContent);

function say(code, values = {}) {
  const template = messages[code] ?? messages.failed;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function size(bytes) {
  return new Intl.NumberFormat(document.documentElement.lang, { style: "unit", unit: "byte", unitDisplay: "long" }).format(bytes);
}

async function fetchBytes(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new OpenError(`HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function show(section, opened) {
  const table = section.querySelector("table");
  const body = table.tBodies[0];
  for (const file of opened.files) {
    const row = body.insertRow();
    cell(row, file.name);
    cell(row, size(file.size));
    cell(row, file.sha256, "fingerprint");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([file.data]));
    link.download = file.name.split("/").at(-1);
    link.textContent = say("save");
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = ` ${file.name}`;
    link.append(hidden);
    row.insertCell().append(link);
  }
  table.hidden = false;
}

async function openAll() {
  let key;
  try {
    const response = await fetch(config.keyUrl, { credentials: "same-origin" });
    if (!response.ok) throw new OpenError(`HTTP ${response.status}`);
    key = await response.json();
  } catch {
    for (const section of document.querySelectorAll("[data-envelope]")) {
      section.querySelector("[data-role=status]").textContent = say("no-key");
    }
    return;
  }
  for (const section of document.querySelectorAll("[data-envelope]")) {
    const kind = section.dataset.envelope;
    const status = section.querySelector("[data-role=status]");
    if (Number(section.dataset.size) > config.maxBytes) {
      status.textContent = say("too-large", { kind });
      status.className = "banner info";
      continue;
    }
    status.textContent = say("opening", { kind });
    try {
      const sealed = await fetchBytes(section.dataset.url);
      const opened = await openTestEnvelope(sealed, key.private_key_pem, key.certificate_pem);
      if (opened.envelope !== kind || opened.tender !== config.reference) throw new OpenError("not this envelope");
      show(section, opened);
      status.textContent = say("opened", { kind, count: opened.files.length });
      status.className = "banner ok";
    } catch {
      status.textContent = say("failed", { kind });
      status.className = "banner error";
    }
  }
  document.getElementById("open-test").dataset.done = "true";
}

openAll();
