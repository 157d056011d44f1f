// The platform's transparency log, checked in the page as `scelle receipts verify
// --online` checks it (core/tlog.py, core/merkle.py, assistant/transparency.py): the
// receipt's tlog-proof shows its entry in a checkpoint the log signed (Ed25519, signed
// note); the log's checkpoint now must extend that tree, and the last one this browser
// saw, kept in IndexedDB per log. A log that forks, rewrites, drops entries or changes
// key is named, with the two signed checkpoints that prove it.

import canonicalize from "canonicalize";
import { concat } from "./der.js";
import { keptIn } from "./kept.js";
import { SealError } from "./seal.js";

const PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const DASH = "\u2014 ";
const ED25519 = 0x01;
const TILE_HEIGHT = 8n;
const TILE_WIDTH = 256n;
const MAX_NOTE_BYTES = 1 << 16;
const encoder = new TextEncoder();

const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));
const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const same = (a, b) => a.length === b.length && a.every((value, i) => value === b[i]);
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const leafHash = (entry) => sha256(concat([Uint8Array.of(0), entry]));
const nodeHash = (left, right) => sha256(concat([Uint8Array.of(1), left, right]));
const unreadable = () => new SealError("log-unreadable");

/** A log's key from its vkey, "<name>+<key id, hex>+<base64(0x01 || Ed25519 key)>". */
export async function parseKey(vkey) {
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first < 1 || second < 0) throw unreadable();
  const name = vkey.slice(0, first);
  let raw;
  try {
    raw = fromBase64(vkey.slice(second + 1));
  } catch {
    throw unreadable();
  }
  const id = (await sha256(concat([encoder.encode(`${name}\n`), raw]))).slice(0, 4);
  if (raw[0] !== ED25519 || raw.length !== 33 || toHex(id) !== vkey.slice(first + 1, second).toLowerCase()) {
    throw unreadable();
  }
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, id, key, vkey };
}

/** A checkpoint the log signed: {origin, size (BigInt), root, text (the whole note)}. */
export async function openCheckpoint(text, log) {
  if (text.length > MAX_NOTE_BYTES) throw unreadable();
  const blank = text.indexOf("\n\n");
  if (blank < 0 || !text.endsWith("\n")) throw unreadable();
  const body = text.slice(0, blank + 1);
  const [origin, size, root] = body.split("\n");
  if (!/^(0|[1-9][0-9]{0,18})$/.test(size ?? "")) throw unreadable();
  let rootBytes;
  try {
    rootBytes = fromBase64(root);
  } catch {
    throw unreadable();
  }
  let signed = false;
  for (const line of text.slice(blank + 2, -1).split("\n")) {
    if (!line.startsWith(DASH)) throw unreadable();
    const [name, encoded] = line.slice(DASH.length).split(" ");
    if (name !== log.name || !encoded) continue;
    let raw;
    try {
      raw = fromBase64(encoded);
    } catch {
      throw unreadable();
    }
    if (same(raw.slice(0, 4), log.id) && raw.length === 68) {
      signed ||= await crypto.subtle.verify({ name: "Ed25519" }, log.key, raw.slice(4), encoder.encode(body));
    }
  }
  if (origin !== log.name || rootBytes.length !== 32 || !signed) {
    throw new SealError("log-signature", { origin: log.name });
  }
  return { origin, size: BigInt(size), root: rootBytes, text };
}

function parseProof(text) {
  const blank = text.indexOf("\n\n");
  const lines = text.slice(0, blank).split("\n");
  if (blank < 0 || lines.shift() !== PROOF_HEADER) throw unreadable();
  if (lines[0]?.startsWith("extra ")) lines.shift();
  const index = lines.shift() ?? "";
  if (!/^index (0|[1-9][0-9]{0,18})$/.test(index) || lines.length > 64) throw unreadable();
  let hashes;
  try {
    hashes = lines.map(fromBase64);
  } catch {
    throw unreadable();
  }
  if (hashes.some((hash) => hash.length !== 32)) throw unreadable();
  return { index: BigInt(index.slice(6)), hashes, checkpoint: text.slice(blank + 2) };
}

// --- RFC 9162 ----------------------------------------------------------------------------

/** 2.1.3.2: whether `proof` shows leaf `index` of a tree of `size` to be `leaf`. */
async function verifyInclusion(index, size, leaf, proof, root) {
  if (index < 0n || index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const node of proof) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      r = await nodeHash(node, r);
      if (!(fn & 1n)) {
        while (!(fn & 1n) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, node);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(r, root);
}

/** 2.1.4.2: whether `proof` shows the tree of `oldSize` to be a prefix of the tree of `size`. */
async function verifyConsistency(oldSize, size, proof, oldRoot, newRoot) {
  if (oldSize <= 0n || oldSize > size) return false;
  if (oldSize === size) return !proof.length && same(oldRoot, newRoot);
  if (!proof.length) return false;
  const nodes = [...proof];
  if ((oldSize & (oldSize - 1n)) === 0n) nodes.unshift(oldRoot);
  let fn = oldSize - 1n;
  let sn = size - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = nodes[0];
  let sr = nodes[0];
  for (const node of nodes.slice(1)) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(node, fr);
      sr = await nodeHash(node, sr);
      if (!(fn & 1n)) {
        while (!(fn & 1n) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, node);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(fr, oldRoot) && same(sr, newRoot);
}

const bitLength = (n) => BigInt(n.toString(2).length) * (n > 0n ? 1n : 0n);
const split = (n) => 1n << (bitLength(n - 1n) - 1n);

async function rangeRoot(low, high, read) {
  const hashes = [];
  while (low < high) {
    let level = bitLength(high - low) - 1n;
    if (low) {
      const lowest = bitLength(low & -low) - 1n;
      if (lowest < level) level = lowest;
    }
    hashes.push(await read(level, low >> level));
    low += 1n << level;
  }
  let value = hashes.pop();
  while (hashes.length) value = await nodeHash(hashes.pop(), value);
  return value;
}

/** PROOF(oldSize, D[0:size]) from the log's stored subtree hashes. */
async function consistencyPath(oldSize, size, read) {
  const proof = [];
  let low = 0n;
  let high = size;
  let m = oldSize;
  let complete = true;
  while (m !== high - low) {
    const k = split(high - low);
    if (m <= k) {
      proof.push(await rangeRoot(low + k, high, read));
      high = low + k;
    } else {
      proof.push(await rangeRoot(low, low + k, read));
      low += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) proof.push(await rangeRoot(low, high, read));
  return proof.reverse();
}

// --- tiles (c2sp.org/tlog-tiles) ---------------------------------------------------------

export function tilePath(level, index, width) {
  let digits = index.toString().padStart(3, "0");
  digits = "0".repeat((3 - (digits.length % 3)) % 3) + digits;
  const groups = digits.match(/.../g);
  const path = [...groups.slice(0, -1).map((g) => `x${g}`), groups.at(-1)].join("/");
  return `tile/${level}/${path}${width === TILE_WIDTH ? "" : `.p/${width}`}`;
}

function tileWidth(level, index, size) {
  const hashes = size >> (TILE_HEIGHT * level);
  if ((index + 1n) * TILE_WIDTH <= hashes) return TILE_WIDTH;
  const left = hashes - index * TILE_WIDTH;
  return left > 0n ? left : 0n;
}

/** read(level, index): a subtree hash of the tree of `size`, from the log's tiles. */
function tileReader(size, fetchTile) {
  const tiles = new Map();
  const tile = async (level, index) => {
    const name = `${level}/${index}`;
    if (!tiles.has(name)) {
      const width = tileWidth(level, index, size);
      const data = width ? await fetchTile(tilePath(level, index, width)) : new Uint8Array();
      if (!width || BigInt(data.length) !== width * 32n) {
        throw new SealError("log-tile", { path: tilePath(level, index, width || 1n) });
      }
      tiles.set(name, Array.from({ length: Number(width) }, (_, i) => data.slice(i * 32, i * 32 + 32)));
    }
    return tiles.get(name);
  };
  return async (level, index) => {
    const tileLevel = level / TILE_HEIGHT;
    const below = level % TILE_HEIGHT;
    const first = index << below;
    const hashes = await tile(tileLevel, first / TILE_WIDTH);
    const start = Number(first % TILE_WIDTH);
    const part = hashes.slice(start, start + (1 << Number(below)));
    if (part.length !== 1 << Number(below)) throw new SealError("log-tile", { path: tilePath(tileLevel, first / TILE_WIDTH, TILE_WIDTH) });
    // The root of these leaf-level hashes of the tile.
    let level0 = part;
    while (level0.length > 1) {
      const next = [];
      for (let i = 0; i < level0.length; i += 2) next.push(await nodeHash(level0[i], level0[i + 1]));
      level0 = next;
    }
    return level0[0];
  };
}

/** Throws log-dropped or log-forked, naming both checkpoints, unless `later` extends `earlier`. */
async function checkConsistency(earlier, later, fetchTile) {
  const evidence = { origin: earlier.origin, old: String(earlier.size), new: String(later.size), earlier: earlier.text, later: later.text };
  if (later.size < earlier.size) throw new SealError("log-dropped", evidence);
  let consistent;
  if (earlier.size === later.size) consistent = same(earlier.root, later.root);
  else if (earlier.size === 0n) consistent = true;
  else {
    const proof = await consistencyPath(earlier.size, later.size, tileReader(later.size, fetchTile));
    consistent = await verifyConsistency(earlier.size, later.size, proof, earlier.root, later.root);
  }
  if (!consistent) throw new SealError("log-forked", evidence);
}

// --- what this browser saw last (IndexedDB) ----------------------------------------------

const kept = keptIn("scelle-log", "checkpoints");

/** The last checkpoint of the log `origin` this browser kept: {vkey, checkpoint}. */
export const lastSeen = (origin) => kept("readonly", (store) => store.get(origin));
const keep = (origin, value) => kept("readwrite", (store) => store.put(value, origin));

// --- the whole check -------------------------------------------------------------------

/**
 * The receipt's entry, proven in the log and checked against the log now and the last
 * checkpoint this browser saw: {origin, index, size, now}; null when the receipt names
 * no log. Throws a SealError naming what the log did.
 */
export async function checkReceiptLog(receiptText, body, logUrl) {
  const document = JSON.parse(receiptText);
  if (!body.log || !document.transparency) return null;
  const log = await parseKey(body.log);
  const proof = parseProof(document.transparency);
  const shown = await openCheckpoint(proof.checkpoint, log);
  const receipt = toHex(await sha256(encoder.encode(canonicalize(body))));
  const leaf = await leafHash(encoder.encode(canonicalize({ receipt, type: "deposit" })));
  if (!(await verifyInclusion(proof.index, shown.size, leaf, proof.hashes, shown.root))) {
    throw new SealError("log-proof");
  }
  const before = await lastSeen(log.name);
  if (before && before.vkey !== log.vkey) throw new SealError("log-key-changed", { origin: log.name });
  const answer = await fetch(`${logUrl}checkpoint`, { cache: "no-store" });
  if (!answer.ok) throw new SealError("log-unreachable", { status: answer.status });
  const current = await openCheckpoint(await answer.text(), log);
  const fetchTile = async (path) => {
    const tile = await fetch(`${logUrl}${path}`);
    if (!tile.ok) throw new SealError("log-tile", { path });
    return new Uint8Array(await tile.arrayBuffer());
  };
  await checkConsistency(shown, current, fetchTile);
  if (before) await checkConsistency(await openCheckpoint(before.checkpoint, log), current, fetchTile);
  if (!before || BigInt(before.size) < current.size) {
    await keep(log.name, { vkey: log.vkey, checkpoint: current.text, size: String(current.size) });
  }
  return { origin: log.name, index: String(proof.index), size: String(shown.size), now: String(current.size), root: toBase64(current.root) };
}
