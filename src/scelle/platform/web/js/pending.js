// An interrupted deposit, kept in the page's storage (IndexedDB) until its
// receipt arrives: each envelope's upload address, its files (name, size,
// SHA-256) and its content key and nonce, sealed with an AES-GCM key that
// WebCrypto keeps non-extractable (the script can use it, never read it).
// Reloading the tab and choosing the same files re-creates the very same
// envelopes, and the upload continues from the platform's offset.

import { keptIn } from "./kept.js";

const run = keptIn("scelle-deposits", "pending");

const get = (key) => run("readonly", (store) => store.get(key));
const put = (key, value) => run("readwrite", (store) => store.put(value, key));
export const forget = (key) => run("readwrite", (store) => store.delete(key));

/** The key under which a tender's pending deposit is kept, per user. */
export const pendingKey = (user, tender) => `${user}\n${tender}`;

/** Seal {contentKey, nonce} of each envelope and keep the deposit. */
export async function keep(key, deposit) {
  const wrapping = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const envelopes = [];
  for (const envelope of deposit.envelopes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const secret = new Uint8Array(44);
    secret.set(envelope.keys.contentKey);
    secret.set(envelope.keys.nonce, 32);
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, wrapping, secret));
    const { keys, ...rest } = envelope;
    envelopes.push({ ...rest, recipientInfos: keys.recipientInfos, iv, sealed });
  }
  await put(key, { ...deposit, wrapping, envelopes });
}

/** The pending deposit kept under `key`, its keys unsealed, or null. */
export async function recall(key) {
  const saved = await get(key);
  if (!saved) return null;
  const envelopes = [];
  for (const { iv, sealed, recipientInfos, ...rest } of saved.envelopes) {
    const secret = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, saved.wrapping, sealed));
    envelopes.push({ ...rest, keys: { contentKey: secret.slice(0, 32), nonce: secret.slice(32), recipientInfos } });
  }
  return { ...saved, wrapping: undefined, envelopes };
}
