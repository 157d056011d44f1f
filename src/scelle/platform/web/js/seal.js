// An envelope sealed in the browser, byte for byte in core/envelope.py's layout:
// CMS AuthEnvelopedData (RFC 5083), AES-256-GCM (RFC 5084), one
// KeyTransRecipientInfo per certificate with RSAES-OAEP SHA-256 (RFC 4055),
// the encrypted content as an indefinite-length OCTET STRING of 1 MiB segments.
//
// Pass 1 (`hashFiles`) reads every file once for the manifest (SHA-256) and
// the ZIP headers (CRC-32); pass 2 (`sealedParts`) streams the archive through
// AES-GCM. Both read files in 1 MiB slices: memory stays flat whatever the size.

import { createCRC32, createSHA256 } from "hash-wasm";
import { commissionRecipientInfo } from "./commission.js";
import { compareBytes, concat, certificateFields, encodeLength, fromHex, tlv } from "./der.js";
import { GcmEncryptor, MAX_GCM_BYTES } from "./gcm.js";
import { archiveSize, layout, manifestBytes, sortFiles } from "./zip.js";

export const CHUNK_SIZE = 1 << 20;
const TAG_BYTES = 16;
const NONCE_BYTES = 12;

const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");

// DER constants, as asn1crypto writes them for core/envelope.py.
const OID_AUTH_ENVELOPED_DATA = fromHex("060b2a864886f70d0109100117");
const OID_DATA = fromHex("06092a864886f70d010701");
const OID_AES256_GCM = fromHex("060960864801650304012e");
/** RSAES-OAEP, SHA-256 and MGF1-SHA-256, empty label (RFC 4055, 4.1). */
const OAEP_SHA256 = fromHex(
  "303c06092a864886f70d010107302fa00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500",
);
const EOC = Uint8Array.of(0, 0);

/** A problem the user can act on; `code` picks the sentence the page shows. */
export class SealError extends Error {
  constructor(code, values = {}) {
    super(code);
    this.code = code;
    this.values = values;
  }
}

/**
 * The RecipientInfos SET: the content key wrapped with RSA-OAEP-SHA256 for each
 * certificate (DER bytes), and split among a commission's members when the tender has
 * one (commission.js), sorted as DER sorts a SET OF.
 */
export async function recipientInfos(contentKey, certificates, commission = null) {
  const infos = [];
  for (const der of certificates) {
    const { issuer, serial, spki } = certificateFields(der);
    const key = await crypto.subtle.importKey("spki", spki, { name: "RSA-OAEP", hash: "SHA-256" }, false, [
      "encrypt",
    ]);
    const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, contentKey));
    infos.push(
      tlv(0x30, Uint8Array.of(0x02, 0x01, 0x00), tlv(0x30, issuer, serial), OAEP_SHA256, tlv(0x04, wrapped)),
    );
  }
  if (commission) infos.push(await commissionRecipientInfo(contentKey, commission));
  infos.sort(compareBytes);
  return tlv(0x31, ...infos);
}

function prefix(nonce, infos) {
  const algorithm = tlv(0x30, OID_AES256_GCM, tlv(0x30, tlv(0x04, nonce), Uint8Array.of(0x02, 0x01, TAG_BYTES)));
  return concat([
    Uint8Array.of(0x30, 0x80), // ContentInfo
    OID_AUTH_ENVELOPED_DATA,
    Uint8Array.of(0xa0, 0x80), // [0] EXPLICIT content
    Uint8Array.of(0x30, 0x80), // AuthEnvelopedData
    Uint8Array.of(0x02, 0x01, 0x00), // version 0
    infos,
    Uint8Array.of(0x30, 0x80), // EncryptedContentInfo
    OID_DATA,
    algorithm,
    Uint8Array.of(0xa0, 0x80), // [0] IMPLICIT encryptedContent, constructed
  ]);
}

function trailer(tag) {
  return concat([EOC, EOC, tlv(0x04, tag), EOC, EOC, EOC]);
}

const TRAILER_BYTES = 2 + 2 + (2 + TAG_BYTES) + 2 + 2 + 2;

/** The exact length of an envelope of `plaintextSize` bytes (as core.envelope.envelope_size). */
export function envelopeSize(infosLength, plaintextSize) {
  const full = Math.floor(plaintextSize / CHUNK_SIZE);
  const rest = plaintextSize % CHUNK_SIZE;
  let segments = full * (1 + encodeLength(CHUNK_SIZE).length + CHUNK_SIZE);
  if (rest) segments += 1 + encodeLength(rest).length + rest;
  return prefix(new Uint8Array(NONCE_BYTES), new Uint8Array(infosLength)).length + segments + TRAILER_BYTES;
}

/** The archive's size from names and sizes alone (SHA-256s are always 64 characters). */
export function plannedArchiveSize(meta, files) {
  const sorted = sortFiles(files);
  const placeholder = sorted.map((file) => ({ name: file.name, size: file.size, sha256: "0".repeat(64) }));
  return archiveSize(manifestBytes({ ...meta, files: placeholder }).length, sorted);
}

/** Bytes per read of a large file, into one buffer the reader hands back each time. */
const READ_BYTES = CHUNK_SIZE;

/**
 * Readers with a read under way. Chromium 156 lets the collector take a file's stream
 * while a BYOB read on it is pending, when nothing else points to it: the read then
 * never settles (a 4 GiB file stalled about one time in two). Held here, it cannot.
 */
const reading = new Set();

/**
 * A file's bytes, read into one buffer (a BYOB reader): each piece is only valid until
 * the next one is asked for, so callers use or copy it first. SealError if the file
 * cannot be read (Chromium refuses a file modified since it was chosen).
 */
async function* fileBytes(entry) {
  let reader;
  try {
    reader = entry.file.stream().getReader({ mode: "byob" });
    reading.add(reader);
    let into = new Uint8Array(READ_BYTES);
    for (;;) {
      const { done, value } = await reader.read(into);
      if (done) return;
      yield value;
      into = new Uint8Array(value.buffer);
    }
  } catch {
    throw new SealError("file-changed", { name: entry.name });
  } finally {
    reading.delete(reader);
    reader?.releaseLock();
  }
}

/** A small file's bytes, whole, or SealError. */
async function wholeFile(entry) {
  try {
    return new Uint8Array(await entry.file.arrayBuffer());
  } catch {
    throw new SealError("file-changed", { name: entry.name });
  }
}

/** Files this small are read whole and hashed by the browser's own SHA-256 (native). */
const WHOLE_FILE_BYTES = 32 << 20;

/**
 * Pass 1: each file's SHA-256 and CRC-32.
 * @param {{name: string, file: Blob}[]} entries
 * @param {(bytes: number) => void} progress
 * @returns {Promise<{name: string, size: number, sha256: string, crc32: number, file: Blob}[]>} sorted
 */
export async function hashFiles(entries, progress = () => {}) {
  const sha = await createSHA256();
  const crc = await createCRC32();
  const hashed = [];
  for (const entry of sortFiles(entries)) {
    const { name, file } = entry;
    let sha256;
    crc.init();
    if (file.size <= WHOLE_FILE_BYTES) {
      const whole = await wholeFile(entry);
      crc.update(whole);
      sha256 = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", whole)));
      progress(whole.length);
    } else {
      sha.init();
      for await (const piece of fileBytes(entry)) {
        sha.update(piece);
        crc.update(piece);
        progress(piece.length);
      }
      sha256 = sha.digest("hex");
    }
    hashed.push({ name, file, size: file.size, sha256, crc32: parseInt(crc.digest("hex"), 16) });
  }
  return hashed;
}

/** The archive's bytes, in pieces; checks that no file changed since pass 1. */
async function* archiveBytes(manifest, hashed) {
  const crcOfManifest = await createCRC32();
  crcOfManifest.init();
  crcOfManifest.update(manifest);
  const check = await createCRC32();
  for (const part of layout(manifest, parseInt(crcOfManifest.digest("hex"), 16), hashed)) {
    if (part instanceof Uint8Array) {
      yield part;
      continue;
    }
    const { file: entry, size } = part;
    check.init();
    let read = 0;
    for await (const piece of fileBytes(entry)) {
      read += piece.length;
      if (read > size) break;
      check.update(piece);
      yield piece;
    }
    if (read !== size || parseInt(check.digest("hex"), 16) !== entry.crc32) {
      throw new SealError("file-changed", { name: entry.name });
    }
  }
}

/**
 * Re-cut a stream of pieces into chunks of exactly `size` bytes (the last one shorter),
 * all in one buffer: a chunk is only valid until the next one is asked for.
 */
async function* rechunk(pieces, size) {
  const buffer = new Uint8Array(size);
  let filled = 0;
  for await (const piece of pieces) {
    let at = 0;
    while (at < piece.length) {
      const step = Math.min(size - filled, piece.length - at);
      buffer.set(piece.subarray(at, at + step), filled);
      filled += step;
      at += step;
      if (filled === size) {
        yield buffer;
        filled = 0;
      }
    }
  }
  if (filled) yield buffer.subarray(0, filled);
}

/** Plaintext bytes per WebCrypto call: four segments (fewer calls, same bytes). */
const GCM_CALL_BYTES = 4 * CHUNK_SIZE;

/**
 * Pass 2: the envelope's bytes, in order: the CMS header, one OCTET STRING per
 * 1 MiB of ciphertext (its header and its bytes as two pieces), the trailer
 * with the tag. Up to `ahead` calls of 4 MiB are encrypted at once.
 * @param {{contentKey: Uint8Array, nonce: Uint8Array, recipientInfos: Uint8Array}} keys
 * @param {{tender: string, envelope: string, bidder: string}} meta
 * @param {Awaited<ReturnType<typeof hashFiles>>} hashed pass 1's result
 */
export async function* sealedParts(keys, meta, hashed, ahead = 2) {
  const manifest = manifestBytes({ ...meta, files: hashed });
  const gcm = await GcmEncryptor.create(keys.contentKey, keys.nonce, new Uint8Array(0), GCM_CALL_BYTES);
  yield prefix(keys.nonce, keys.recipientInfos);
  const pending = [];
  let total = 0;
  for await (const chunk of rechunk(archiveBytes(manifest, hashed), GCM_CALL_BYTES)) {
    total += chunk.length;
    if (total > MAX_GCM_BYTES) throw new SealError("too-large");
    pending.push(gcm.update(chunk)); // WebCrypto copies the chunk here: its buffer is free again
    if (pending.length >= ahead) yield* segments(await pending.shift());
  }
  while (pending.length) yield* segments(await pending.shift());
  yield trailer(await gcm.finish());
}

const FULL_SEGMENT_HEADER = concat([Uint8Array.of(0x04), encodeLength(CHUNK_SIZE)]);

/** Ciphertext cut in 1 MiB OCTET STRINGs: header, then the bytes (not copied). */
function* segments(ciphertext) {
  for (let at = 0; at < ciphertext.length; at += CHUNK_SIZE) {
    const piece = ciphertext.subarray(at, at + CHUNK_SIZE);
    yield piece.length === CHUNK_SIZE ? FULL_SEGMENT_HEADER : concat([Uint8Array.of(0x04), encodeLength(piece.length)]);
    yield piece;
  }
}

/** A fresh content key and nonce, wrapped for every recipient (and a commission). */
export async function freshKeys(certificates, commission = null) {
  const contentKey = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  return { contentKey, nonce, recipientInfos: await recipientInfos(contentKey, certificates, commission) };
}

export { hex, fromHex };
