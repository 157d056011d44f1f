// The page "Ouvrir mon dépôt de test": the company opens, in its own browser, a
// deposit it made to the platform's test tender, with the test key the platform
// publishes, and sees the files exactly as a buyer's workstation would get them.
//
// It reads what core/envelope.py and seal.js write (CMS AuthEnvelopedData,
// AES-256-GCM, RSA-OAEP-SHA256) and the stored ZIP of core/archive.py, all in
// memory: test deposits are small (the platform caps them). Files are shown
// only once the GCM tag has verified and each file's SHA-256 matches the
// manifest; any failure says "cannot be opened", never which step failed.

import { certificateFields, compareBytes, concat, fromHex } from "./der.js";
import { MANIFEST_FORMAT, MANIFEST_NAME } from "./zip.js";

const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
const OID_AUTH_ENVELOPED_DATA = fromHex("2a864886f70d0109100117");
const OID_AES256_GCM = fromHex("60864801650304012e");
const OAEP_SHA256 = fromHex(
  "303c06092a864886f70d010107302fa00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500",
);

/** The envelope cannot be opened; why is not said (DESIGN.md: errors never leak the step). */
export class OpenError extends Error {}

const fail = () => {
  throw new OpenError("cannot open");
};

/**
 * One BER value (X.690) at `at`: tag, whether constructed, its content's bounds
 * and where it ends; definite and indefinite lengths alike.
 */
function node(bytes, at, depth = 0) {
  if (depth > 16 || at + 2 > bytes.length) fail();
  const tag = bytes[at];
  if ((tag & 0x1f) === 0x1f) fail();
  const constructed = (tag & 0x20) !== 0;
  const first = bytes[at + 1];
  let contentStart = at + 2;
  if (first === 0x80) {
    if (!constructed) fail();
    const children = [];
    let next = contentStart;
    for (;;) {
      if (next + 2 > bytes.length) fail();
      if (bytes[next] === 0 && bytes[next + 1] === 0) break;
      const child = node(bytes, next, depth + 1);
      children.push(child);
      next = child.end;
    }
    return { tag, constructed, start: at, contentStart, contentEnd: next, end: next + 2, children };
  }
  let length = first;
  if (first > 0x80) {
    const count = first & 0x7f;
    if (count > 4 || contentStart + count > bytes.length) fail();
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[contentStart + i];
    contentStart += count;
  }
  const contentEnd = contentStart + length;
  if (contentEnd > bytes.length) fail();
  const found = { tag, constructed, start: at, contentStart, contentEnd, end: contentEnd, children: [] };
  if (constructed) {
    for (let next = contentStart; next < contentEnd; ) {
      const child = node(bytes, next, depth + 1);
      found.children.push(child);
      next = child.end;
    }
    if (found.children.length && found.children.at(-1).end !== contentEnd) fail();
  }
  return found;
}

const content = (bytes, value) => bytes.subarray(value.contentStart, value.contentEnd);
const whole = (bytes, value) => bytes.subarray(value.start, value.end);

/** The octets of an OCTET STRING, primitive or constructed (BER allows both). */
function octets(bytes, value) {
  if (!value.constructed) return content(bytes, value);
  return concat(value.children.map((child) => octets(bytes, child)));
}

const same = (a, b) => a.length === b.length && compareBytes(a, b) === 0;

/** The envelope's parts: the content key wrapped for `certificate`, nonce, ciphertext, tag. */
function readEnvelope(bytes, certificateDer) {
  const info = node(bytes, 0);
  if (info.tag !== 0x30 || info.children.length !== 2) fail();
  const [type, explicit] = info.children;
  if (type.tag !== 0x06 || !same(content(bytes, type), OID_AUTH_ENVELOPED_DATA)) fail();
  if (explicit.tag !== 0xa0 || explicit.children.length !== 1) fail();
  // version, [0] originatorInfo?, recipientInfos, authEncryptedContentInfo, [1]?, mac, [2]?
  const fields = explicit.children[0].children;
  const recipientInfos = fields.find((child) => child.tag === 0x31);
  const encrypted = fields.find((child) => child.tag === 0x30);
  const mac = fields.find((child) => child.tag === 0x04);
  if (!recipientInfos || !encrypted || !mac || mac.start < encrypted.end) fail();
  const { issuer, serial } = certificateFields(certificateDer);
  let wrapped = null;
  for (const recipient of recipientInfos.children) {
    if (recipient.tag !== 0x30 || recipient.children.length !== 4) continue;
    const [, rid, algorithm, key] = recipient.children;
    if (rid.tag !== 0x30 || rid.children.length !== 2) continue;
    const [ridIssuer, ridSerial] = rid.children.map((child) => whole(bytes, child));
    if (same(ridIssuer, issuer) && same(ridSerial, serial) && same(whole(bytes, algorithm), OAEP_SHA256)) {
      wrapped = octets(bytes, key);
    }
  }
  if (wrapped === null) fail();
  const [, algorithm, body] = encrypted.children;
  if (!algorithm || !body || (body.tag & 0xdf) !== 0x80) fail(); // [0] IMPLICIT, either form
  const [algorithmOid, parameters] = algorithm.children;
  if (!algorithmOid || !same(content(bytes, algorithmOid), OID_AES256_GCM) || !parameters) fail();
  const nonce = content(bytes, parameters.children[0] ?? fail());
  if (nonce.length !== 12) fail();
  const ciphertext = body.constructed ? octets(bytes, body) : content(bytes, body);
  const tag = content(bytes, mac);
  if (tag.length !== 16) fail();
  return { wrapped, nonce, ciphertext, tag };
}

function pemBody(pem, label) {
  const match = pem.match(new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`));
  if (!match) fail();
  return Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (char) => char.charCodeAt(0));
}

/** The archive's entries, in order: the stored ZIP of core/archive.py, nothing else. */
function zipEntries(zip) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const entries = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let at = 0;
  while (at + 4 <= zip.length && view.getUint32(at, true) === 0x04034b50) {
    if (at + 30 > zip.length) fail();
    const method = view.getUint16(at + 8, true);
    const size = view.getUint32(at + 18, true);
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    if (method !== 0 || size === 0xffffffff) fail(); // stored; a test deposit needs no ZIP64
    const start = at + 30 + nameLength + extraLength;
    if (start + size > zip.length) fail();
    let name;
    try {
      name = decoder.decode(zip.subarray(at + 30, at + 30 + nameLength));
    } catch {
      fail();
    }
    entries.push({ name, data: zip.subarray(start, start + size) });
    at = start + size;
  }
  if (!entries.length || entries[0].name !== MANIFEST_NAME) fail();
  return entries;
}

/**
 * Open a test envelope: its bytes, the published key (PKCS#8 PEM) and certificate
 * (PEM). Gives the manifest and each file, each checked against the manifest.
 */
export async function openTestEnvelope(envelopeBytes, privateKeyPem, certificatePem) {
  try {
    const parts = readEnvelope(envelopeBytes, pemBody(certificatePem, "CERTIFICATE"));
    const key = await crypto.subtle.importKey(
      "pkcs8", pemBody(privateKeyPem, "PRIVATE KEY"), { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"],
    );
    const contentKey = await crypto.subtle.decrypt({ name: "RSA-OAEP" }, key, parts.wrapped);
    const aes = await crypto.subtle.importKey("raw", contentKey, "AES-GCM", false, ["decrypt"]);
    const zip = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: parts.nonce, tagLength: 128 }, aes, concat([parts.ciphertext, parts.tag]),
      ),
    );
    const [manifestEntry, ...rest] = zipEntries(zip);
    const manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestEntry.data));
    if (manifest.format !== MANIFEST_FORMAT || !Array.isArray(manifest.files) || manifest.files.length !== rest.length) fail();
    const files = [];
    for (const [index, entry] of rest.entries()) {
      const listed = manifest.files[index];
      const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", entry.data)));
      if (listed.name !== entry.name || listed.size !== entry.data.length || listed.sha256 !== digest) fail();
      files.push({ name: entry.name, size: entry.data.length, sha256: digest, data: entry.data });
    }
    return { tender: manifest.tender, envelope: manifest.envelope, bidder: manifest.bidder, files };
  } catch (error) {
    throw error instanceof OpenError ? error : new OpenError("cannot open");
  }
}
