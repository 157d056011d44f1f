// A commission's recipient, byte for byte as core/commission.py writes it: the content key
// split k of n by Shamir's scheme (the npm package shamir-secret-sharing, which
// core/shamir.py matches share for share), each share RSA-OAEP-SHA256-encrypted to its
// member under a label binding tender, deadline and envelope, the whole in one CMS
// OtherRecipientInfo ([4]) of ours. The ASN.1 is in core/commission.py's docstring.

import { combine, split } from "shamir-secret-sharing";
import { certificateFields, compareBytes, concat, fromHex, tlv } from "./der.js";


/** id-scelle-commission: 2.25.19086125424708564197750278881582884074.1 (X.667 UUID arc). */
const OID_COMMISSION = fromHex("0614699cdbeda8dc80d2e1f598caeafaffbdb6c96a01");
const OID_RSAES_OAEP = fromHex("06092a864886f70d010107");
const OID_P_SPECIFIED = fromHex("06092a864886f70d010109");
/** [0] hashAlgorithm SHA-256 and [1] maskGenAlgorithm MGF1-SHA-256 (RFC 4055, 4.1). */
const OAEP_SHA256_HASHES = fromHex(
  "a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500",
);
const LABEL_PREFIX = new TextEncoder().encode("scelle-commission/1");
const MEMBERS_PREFIX = new TextEncoder().encode("scelle-commission-members/1");
const VERSION = 1;
const ENVELOPE_ID_BYTES = 16;

function uuidBytes(text) {
  const digits = text.replace(/-/g, "");
  if (!/^[0-9a-f]{32}$/i.test(digits)) throw new Error("a tender's id is a UUID");
  return fromHex(digits.toLowerCase());
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** k and the members' certificates, as every share's label binds them
 * (core.commission.Commission.digest). */
export async function commissionDigest(memberDers, threshold) {
  const fingerprints = await Promise.all(memberDers.map(sha256));
  fingerprints.sort(compareBytes);
  return sha256(concat([MEMBERS_PREFIX, Uint8Array.of(threshold), ...fingerprints]));
}

/** The OAEP label of every share of an envelope (core.commission.share_label). */
export async function shareLabel(tender, notBefore, envelope, digest) {
  const seconds = new DataView(new ArrayBuffer(8));
  seconds.setBigUint64(0, BigInt(Math.floor(notBefore.getTime() / 1000)));
  return sha256(concat([LABEL_PREFIX, uuidBytes(tender), new Uint8Array(seconds.buffer), envelope, digest]));
}

function generalizedTime(date) {
  const text = date.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
  return tlv(0x18, new TextEncoder().encode(text));
}

function integer(value) {
  return tlv(0x02, Uint8Array.of(value)); // 1 to 255, positive: one byte, or two for >= 0x80
}

function smallInteger(value) {
  return value < 0x80 ? integer(value) : tlv(0x02, Uint8Array.of(0, value));
}

/** RSAES-OAEP, SHA-256, MGF1-SHA-256, pSourceFunc id-pSpecified with `label`. */
function oaepWithLabel(label) {
  return tlv(0x30, OID_RSAES_OAEP, tlv(0x30, OAEP_SHA256_HASHES, tlv(0xa2, tlv(0x30, OID_P_SPECIFIED, tlv(0x04, label)))));
}

function randomSubset(items, size) {
  const pool = [...items];
  const chosen = [];
  const random = crypto.getRandomValues(new Uint32Array(size));
  for (let i = 0; i < size; i++) chosen.push(pool.splice(random[i] % pool.length, 1)[0]);
  return chosen;
}

/**
 * The commission's OtherRecipientInfo for `contentKey`: `commission` is
 * { tender: "uuid", notBefore: Date (the deadline), members: [certificate DER], threshold }.
 * The split is checked by recombining a random k-subset before anything is encrypted.
 */
export async function commissionRecipientInfo(contentKey, commission) {
  const { tender, notBefore, members, threshold } = commission;
  if (!(threshold >= 2 && threshold <= members.length && members.length <= 255)) {
    throw new Error("a commission has 2 to 255 members, at least 2 of them needed to open");
  }
  const shares = await split(contentKey, members.length, threshold);
  const again = await combine(randomSubset(shares, threshold));
  if (compareBytes(again, contentKey) !== 0) throw new Error("the content key's shares do not combine");
  const envelope = crypto.getRandomValues(new Uint8Array(ENVELOPE_ID_BYTES));
  const seconds = new Date(Math.floor(notBefore.getTime() / 1000) * 1000);
  const label = await shareLabel(tender, seconds, envelope, await commissionDigest(members, threshold));
  const sealed = [];
  for (const [index, der] of members.entries()) {
    const { issuer, serial, spki } = certificateFields(der);
    const key = await crypto.subtle.importKey("spki", spki, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
    const encrypted = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP", label }, key, shares[index]));
    sealed.push(tlv(0x30, tlv(0x30, issuer, serial), oaepWithLabel(label), tlv(0x04, encrypted)));
  }
  const value = tlv(
    0x30,
    integer(VERSION),
    smallInteger(threshold),
    generalizedTime(seconds),
    tlv(0x04, envelope),
    tlv(0x30, ...sealed),
  );
  return tlv(0xa4, OID_COMMISSION, value);
}
