// Just enough DER (X.690) to write an envelope's header the way core/envelope.py
// does, and to take a certificate's issuer and serial number as they are.

/** Definite length octets (X.690 8.1.3). */
export function encodeLength(length) {
  if (length < 0x80) return Uint8Array.of(length);
  const body = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) body.unshift(rest % 256);
  return Uint8Array.of(0x80 | body.length, ...body);
}

export function concat(parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A definite-length TLV with a one-byte tag. */
export function tlv(tag, ...content) {
  const body = concat(content);
  return concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

/** Lexicographic order of byte strings, as DER sorts a SET OF. */
export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** The TLVs inside a constructed DER value, each as the bytes it was written with. */
export function children(der) {
  const found = [];
  let at = headerOf(der, 0).contentStart;
  const end = at + headerOf(der, 0).length;
  while (at < end) {
    const header = headerOf(der, at);
    const next = header.contentStart + header.length;
    found.push(der.subarray(at, next));
    at = next;
  }
  if (at !== end) throw new Error("malformed DER");
  return found;
}

function headerOf(der, at) {
  if (at + 2 > der.length || (der[at] & 0x1f) === 0x1f) throw new Error("malformed DER");
  const first = der[at + 1];
  if (first < 0x80) return { contentStart: at + 2, length: first, end: at + 2 + first };
  const count = first & 0x7f;
  if (count === 0 || count > 4 || at + 2 + count > der.length) throw new Error("malformed DER");
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + der[at + 2 + i];
  if (at + 2 + count + length > der.length) throw new Error("malformed DER");
  return { contentStart: at + 2 + count, length };
}

/** A certificate's serialNumber, issuer and subjectPublicKeyInfo, as its DER holds them. */
export function certificateFields(certificateDer) {
  const [tbs] = children(certificateDer);
  const fields = children(tbs);
  const offset = fields[0][0] === 0xa0 ? 1 : 0; // [0] version, absent from v1 certificates
  return { serial: fields[offset], issuer: fields[offset + 2], spki: fields[offset + 5] };
}

/** Bytes from their hexadecimal writing. */
export const fromHex = (text) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
