// The proof kit (dossier de preuve) the deposit page offers once the receipt checked out:
// the receipt and each envelope's content key, sealed under a password the company
// chooses, in the format core/proofkit.py reads (`scelle proof verify KIT ENVELOPE`).
// It is made in the page and saved on the company's computer: the platform never sees it.

import { argon2id } from "hash-wasm";

export const FORMAT = "scelle-proof-kit/1";
// As core/sealing.py derives: OWASP's first Argon2id profile (19 MiB, 2 passes, 1 lane).
const KDF = { memoryKib: 19 * 1024, iterations: 2, lanes: 1 };
const MIN_LENGTH = 12;
const PASSPHRASE_LENGTH = 20;
const COMMON = ["password", "motdepasse", "azerty", "qwerty", "123456", "abcdef", "soleil",
  "bonjour", "marches", "admin", "secret", "scelle"];

const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

/** Why the password is too weak (core/passwords.py's rules), or null. */
export function passwordProblem(password) {
  const chars = [...password];
  if (chars.length < MIN_LENGTH) return "kit-password-short";
  if (new Set(chars).size < Math.floor(chars.length / 3) + 2) return "kit-password-repeats";
  let stripped = password.toLowerCase();
  for (const fragment of COMMON) stripped = stripped.split(fragment).join("");
  if ([...stripped].length < MIN_LENGTH / 2) return "kit-password-common";
  const classes = [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{L}\p{N}]/u].filter((re) => re.test(password)).length;
  if (chars.length < PASSPHRASE_LENGTH && classes < 3) return "kit-password-classes";
  return null;
}

/**
 * The kit's text: `receipt` as the platform gave it, `envelopes` as it names them
 * ({kind, size, sha256}), `contentKeys` each envelope's AES key by kind.
 */
export async function makeKit(receipt, envelopes, contentKeys, password) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const derived = await argon2id({
    password: password.normalize("NFC"),
    salt,
    parallelism: KDF.lanes,
    iterations: KDF.iterations,
    memorySize: KDF.memoryKib,
    hashLength: 32,
    outputType: "binary",
  });
  const key = await crypto.subtle.importKey("raw", derived, "AES-GCM", false, ["encrypt"]);
  const sealed = [];
  for (const { kind, size, sha256 } of envelopes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const additionalData = new TextEncoder().encode(`${FORMAT}\n${kind}\n${sha256}`);
    const box = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, contentKeys[kind]));
    const joined = new Uint8Array(iv.length + box.length);
    joined.set(iv);
    joined.set(box, iv.length);
    sealed.push({ kind, size, sha256, key: toBase64(joined) });
  }
  const kdf = { name: "argon2id", salt: toBase64(salt), memory_kib: KDF.memoryKib, iterations: KDF.iterations, lanes: KDF.lanes };
  return `${JSON.stringify({ format: FORMAT, kdf, envelopes: sealed, receipt }, null, 1)}\n`;
}
