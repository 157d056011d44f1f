// ECDSA signatures: X.509 and the platform's receipts write them in DER
// (SEQUENCE { r INTEGER, s INTEGER }); WebCrypto wants r || s, 32 bytes each on P-256.

import { children } from "./der.js";

export const ECDSA_SHA256_RAW = { name: "ECDSA", namedCurve: "P-256" };

function fixed(integer, size) {
  // The INTEGER's content: drop its tag and length, then any sign byte.
  let value = integer.subarray(2);
  while (value.length > size && value[0] === 0) value = value.subarray(1);
  if (value.length > size) throw new Error("ECDSA value too long");
  const out = new Uint8Array(size);
  out.set(value, size - value.length);
  return out;
}

/** r || s from a DER ECDSA-Sig-Value on P-256. */
export function derToRawSignature(der) {
  const [r, s, ...rest] = children(der);
  if (!r || !s || rest.length || r[0] !== 0x02 || s[0] !== 0x02 || r[1] > 0x21 || s[1] > 0x21) {
    throw new Error("not an ECDSA signature");
  }
  const out = new Uint8Array(64);
  out.set(fixed(r, 32));
  out.set(fixed(s, 32), 32);
  return out;
}
