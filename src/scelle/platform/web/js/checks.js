// What the page checks before sealing anything, and after: the tender's recipient
// certificates (as assistant/deposit.py's check_recipients), their recipient-set
// fingerprint (core/rsf.py), and the platform's signed receipt (core/receipt.py).
// The server is not believed: a certificate it adds that its CA did not issue,
// or a receipt it did not sign, stops the deposit.

import "@abraham/reflection";
import { ECDSA_SHA256_RAW, derToRawSignature } from "./signature.js";
import { KeyUsageFlags, KeyUsagesExtension, X509Certificate } from "@peculiar/x509";
import canonicalize from "canonicalize";
import { concat } from "./der.js";
import { SealError } from "./seal.js";

const MIN_RSA_BITS = 2048;
const encoder = new TextEncoder();
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** "AB:CD:…", as OpenSSL and the platform show a fingerprint. */
export async function fingerprint(der) {
  return Array.from(await sha256(der), (byte) => byte.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

async function sortedDigests(ders) {
  const unique = new Map();
  for (const der of ders) {
    const digest = await sha256(der);
    unique.set(Array.from(digest).join(","), digest);
  }
  return [...unique.values()].sort((a, b) => {
    for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  });
}

/** The first 100 bits of a digest in Crockford's base32, as core.rsf writes them. */
function written(digest) {
  let value = 0n;
  for (const byte of digest) value = (value << 8n) | BigInt(byte);
  value >>= 256n - 100n;
  let symbols = "";
  for (let i = 19; i >= 0; i--) symbols += ALPHABET[Number((value >> BigInt(5 * i)) & 31n)];
  return `RSF ${symbols.match(/.{4}/g).join("-")}`;
}

/** The recipient-set fingerprint of certificates (core.rsf.recipient_set_fingerprint). */
export async function recipientSetFingerprint(ders) {
  const sorted = await sortedDigests(ders);
  return written(await sha256(concat([encoder.encode("scelle-rsf-v1"), ...sorted])));
}

/** The RSF of a tender a commission opens (core.rsf.commission_set_fingerprint). */
export async function commissionSetFingerprint(backupDers, memberDers, threshold) {
  const kept = await sortedDigests(backupDers);
  const named = await sortedDigests(memberDers);
  return written(
    await sha256(
      concat([
        encoder.encode("scelle-rsf-v2"),
        Uint8Array.of(kept.length),
        ...kept,
        Uint8Array.of(threshold, named.length),
        ...named,
      ]),
    ),
  );
}

/** An RSF as a person typed it (core.rsf.normalise_rsf), or null. */
export function normaliseRsf(text) {
  const read = { O: "0", I: "1", L: "1" };
  let cleaned = text.toUpperCase().replace(/[\s\-_.]/g, "");
  if (cleaned.startsWith("RSF")) cleaned = cleaned.slice(3);
  cleaned = cleaned.replace(/[OIL]/g, (char) => read[char]);
  if (cleaned.length !== 20 || [...cleaned].some((char) => !ALPHABET.includes(char))) return null;
  return `RSF ${cleaned.match(/.{4}/g).join("-")}`;
}

async function rsaBits(certificate) {
  try {
    const key = await crypto.subtle.importKey(
      "spki",
      certificate.publicKey.rawData,
      { name: "RSA-OAEP", hash: "SHA-256" },
      false,
      ["encrypt"],
    );
    return key.algorithm.modulusLength;
  } catch {
    return 0;
  }
}

async function issuedBy(certificate, authority) {
  try {
    return await certificate.verify({ publicKey: authority.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * The tender's recipients, checked, with their RSF; refuses (SealError) as the command does.
 * @param {object} tender the API's tender
 * @param {string} authorityPem the platform CA
 * @param {string} expectRsf what the company typed from the notice, or ""
 * @param {Date} now
 */
export async function checkRecipients(tender, authorityPem, expectRsf, now) {
  const recipients = tender.key_pairs ?? [];
  if (!recipients.length) throw new SealError("no-key-pair");
  const authority = new X509Certificate(authorityPem);
  const deadline = new Date(tender.deadline);
  const ders = [];
  const certificates = [];
  for (const recipient of recipients) {
    let certificate;
    try {
      certificate = new X509Certificate(recipient.certificate_pem);
    } catch {
      throw new SealError("certificate-unreadable", { name: recipient.designation });
    }
    certificates.push(certificate);
    ders.push(new Uint8Array(certificate.rawData));
  }
  const threshold = tender.commission?.threshold ?? null;
  const members = recipients.map((recipient, i) => [recipient, ders[i]]).filter(([r]) => r.role === "member");
  const ordinary = recipients.map((recipient, i) => [recipient, ders[i]]).filter(([r]) => r.role !== "member");
  if (threshold !== null && !(ordinary.length && threshold >= 2 && threshold <= members.length && members.length <= 255)) {
    throw new SealError("commission-impossible");
  }
  const rsf =
    threshold === null
      ? await recipientSetFingerprint(ders)
      : await commissionSetFingerprint(ordinary.map(([, der]) => der), members.map(([, der]) => der), threshold);
  const expected = expectRsf.trim() ? normaliseRsf(expectRsf) : null;
  if (expectRsf.trim() && expected === null) throw new SealError("rsf-unreadable", { value: expectRsf.trim() });
  if (expected !== null && expected !== rsf) throw new SealError("rsf-differs", { rsf, expected });
  for (const [i, certificate] of certificates.entries()) {
    const name = recipients[i].designation;
    const bits = await rsaBits(certificate);
    if (!bits) throw new SealError("certificate-not-rsa", { name });
    if (bits < MIN_RSA_BITS) throw new SealError("certificate-weak", { name, bits });
    const usage = certificate.getExtension(KeyUsagesExtension);
    if (usage && !(usage.usages & KeyUsageFlags.keyEncipherment)) {
      throw new SealError("certificate-usage", { name });
    }
    if (now < certificate.notBefore) throw new SealError("certificate-not-yet", { name });
    if (now > certificate.notAfter) throw new SealError("certificate-expired", { name });
    if (deadline > certificate.notAfter) throw new SealError("certificate-expires", { name });
    if (!(await issuedBy(certificate, authority))) {
      if (recipients[i].issued_by_platform) throw new SealError("certificate-not-issued", { name });
      if (expected === null) throw new SealError("certificate-referenced", { name, rsf });
    }
  }
  // With a commission, the content key goes to the backup key pairs, and its shares to the
  // members (commission.js).
  const commission =
    threshold === null
      ? null
      : { tender: tender.id, notBefore: deadline, members: members.map(([, der]) => der), threshold };
  return {
    ders: commission ? ordinary.map(([, der]) => der) : ders,
    commission,
    rsf,
    fingerprints: await Promise.all(ders.map(fingerprint)),
    memberFingerprints: await Promise.all(members.map(([, der]) => fingerprint(der))),
  };
}

/**
 * Check the platform's signed receipt (core.receipt.verify_receipt) and that it
 * says what was sent: each envelope's size and SHA-256, and the recipients.
 * @returns {object} the receipt's body
 */
export async function checkReceipt(text, authorityPem, sent, rsf, fingerprints, commission = null) {
  let document;
  let signer;
  let chain;
  let signature;
  try {
    document = JSON.parse(text);
    if (document.signature.algorithm !== "ecdsa-with-SHA256") throw new Error("algorithm");
    signer = new X509Certificate(document.signature.certificate);
    chain = document.signature.chain.map((pem) => new X509Certificate(pem));
    signature = derToRawSignature(Uint8Array.from(atob(document.signature.value), (c) => c.charCodeAt(0)));
  } catch {
    throw new SealError("receipt-damaged");
  }
  const body = document.receipt;
  const key = await crypto.subtle.importKey("spki", signer.publicKey.rawData, ECDSA_SHA256_RAW, false, ["verify"]);
  const good = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    signature,
    encoder.encode(canonicalize(body)),
  );
  const usage = signer.getExtension(KeyUsagesExtension);
  const authority = new X509Certificate(authorityPem);
  if (
    !good ||
    !usage ||
    !(usage.usages & KeyUsageFlags.digitalSignature) ||
    !chain.length ||
    !(await issuedBy(signer, chain[0])) ||
    !chain[0].equal(authority)
  ) {
    throw new SealError("receipt-signature");
  }
  const at = new Date(body.received_at);
  if (!(signer.notBefore <= at && at <= signer.notAfter)) throw new SealError("receipt-signature");
  const got = new Map(body.envelopes.map((e) => [e.kind, `${e.size} ${e.sha256}`]));
  const wanted = new Map(sent.map((e) => [e.kind, `${e.size} ${e.sha256}`]));
  if (got.size !== wanted.size || [...wanted].some(([kind, value]) => got.get(kind) !== value)) {
    throw new SealError("receipt-mismatch");
  }
  const expected = [...fingerprints].sort().join(",");
  // A commission stated in the receipt is the one the page sealed to: its members and k.
  const stated = body.commission ?? null;
  const commissionDiffers =
    (stated === null) !== (commission === null) ||
    (stated !== null &&
      (stated.threshold !== commission.threshold ||
        [...stated.members].sort().join(",") !== [...commission.members].sort().join(",")));
  if (
    commissionDiffers ||
    (body.rsf != null && body.rsf !== rsf) ||
    body.envelopes.some((e) => e.recipients?.length && [...e.recipients].sort().join(",") !== expected)
  ) {
    throw new SealError("receipt-recipients");
  }
  return body;
}
