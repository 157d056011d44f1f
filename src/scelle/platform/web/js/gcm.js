// Streaming AES-GCM (NIST SP 800-38D) on WebCrypto, for contents of any size.
//
// WebCrypto's AES-GCM takes the whole plaintext at once; an envelope may
// hold 64 GiB. So the stream is built from WebCrypto's native pieces:
//
//  - the keystream: AES-CTR with GCM's counter layout (the last 32 bits
//    count, wrapping as inc32 does: `length: 32`), from inc32(J0);
//  - GHASH, chunk by chunk: AES-GCM over an empty plaintext with the
//    ciphertext chunk as additional data gives
//        tag = GHASH_H(chunk || lengths) xor E_K(Z),   Z = 0^96 || 1,
//    from which the chunk's part of the whole GHASH is recovered with two
//    multiplications in GF(2^128); the parts are chained by multiplying the
//    running value by H^(blocks of the chunk).
//
// So every byte goes through native code (AES-NI, PCLMUL where the CPU has
// them) and only a few field multiplications per chunk run in JavaScript;
// they use @noble/ciphers' GHASH, an audited implementation.
//
// Chunks may be encrypted concurrently (the keystream of a chunk depends on
// its offset only); their GHASH parts are folded in order.

import { GHASH } from "@noble/ciphers/_polyval.js";

const BLOCK = 16;
const ZERO_IV = new Uint8Array(12);
/** GCM's limit for one key and nonce: 2^39 - 256 bits. */
export const MAX_GCM_BYTES = 2 ** 36 - 32;

/** a·b in GCM's field (bit order of SP 800-38D). */
export function multiply(a, b) {
  return new GHASH(b, BLOCK).update(a).digest();
}

function xor(a, b) {
  const out = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** [bitsA]64 || [bitsC]64, from byte counts. */
function lengthBlock(aadBytes, dataBytes) {
  const out = new Uint8Array(BLOCK);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(aadBytes) * 8n);
  view.setBigUint64(8, BigInt(dataBytes) * 8n);
  return out;
}

function power(h, exponent) {
  let result = null;
  let base = h;
  for (let e = exponent; e > 0; e = Math.floor(e / 2)) {
    if (e % 2) result = result === null ? base : multiply(result, base);
    if (e > 1) base = multiply(base, base);
  }
  return result;
}

/** The counter block `offset` blocks after `start`, wrapping in the low 32 bits (inc32). */
function counterAt(start, offset) {
  const out = start.slice();
  const view = new DataView(out.buffer);
  view.setUint32(12, (view.getUint32(12) + offset) % 2 ** 32);
  return out;
}

export class GcmEncryptor {
  /**
   * @param {Uint8Array} key AES key, 16, 24 or 32 bytes
   * @param {Uint8Array} iv the nonce: 12 bytes as envelopes use, any length as GCM allows
   * @param {Uint8Array} [aad] additional authenticated data
   * @param {number} [chunkBytes] the size of every update but the last (a multiple of 16)
   */
  static async create(key, iv, aad = new Uint8Array(0), chunkBytes = 1 << 20) {
    if (![16, 24, 32].includes(key.length)) throw new RangeError("AES keys have 16, 24 or 32 bytes");
    if (iv.length < 1) throw new RangeError("GCM needs a nonce");
    if (chunkBytes % BLOCK || chunkBytes <= 0) throw new RangeError("chunks are whole blocks");
    const subtle = globalThis.crypto.subtle;
    const ctr = await subtle.importKey("raw", key, "AES-CTR", false, ["encrypt"]);
    const gcm = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
    const encryptBlock = async (block) =>
      new Uint8Array(
        await subtle.encrypt({ name: "AES-CTR", counter: block, length: 32 }, ctr, new Uint8Array(BLOCK)),
      );
    const h = await encryptBlock(new Uint8Array(BLOCK));
    let j0;
    if (iv.length === 12) {
      j0 = new Uint8Array(BLOCK);
      j0.set(iv);
      j0[15] = 1;
    } else {
      j0 = new GHASH(h, iv.length + BLOCK).update(iv).update(lengthBlock(0, iv.length)).digest();
    }
    // E_K(Z) for the GHASH calls: the tag of an empty message with no data is exactly that.
    const mask = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: ZERO_IV }, gcm, new Uint8Array(0)));
    const encryptor = new GcmEncryptor(subtle, ctr, gcm, h, j0, mask, chunkBytes);
    encryptor.tagMask = await encryptBlock(j0);
    if (aad.length) {
      encryptor.aadBytes = aad.length;
      encryptor.folded = encryptor.ghashPart(aad).then((part) => part);
    }
    return encryptor;
  }

  constructor(subtle, ctr, gcm, h, j0, mask, chunkBytes) {
    this.subtle = subtle;
    this.ctr = ctr;
    this.gcm = gcm;
    this.h = h;
    this.first = counterAt(j0, 1);
    this.mask = mask;
    this.chunkBytes = chunkBytes;
    this.chunkPower = power(h, chunkBytes / BLOCK);
    this.aadBytes = 0;
    this.dataBytes = 0;
    this.ended = false;
    /** The GHASH of everything folded so far, times H (a promise: parts fold in order). */
    this.folded = Promise.resolve(new Uint8Array(BLOCK));
  }

  /** The chunk's GHASH (without lengths) times H: Σ B_i·H^(n-i+2). */
  async ghashPart(data) {
    const tag = new Uint8Array(
      await this.subtle.encrypt({ name: "AES-GCM", iv: ZERO_IV, additionalData: data }, this.gcm, new Uint8Array(0)),
    );
    // tag = (X_n xor L)·H xor E_K(Z), so X_n·H = tag xor E_K(Z) xor L·H.
    return xor(xor(tag, this.mask), multiply(lengthBlock(data.length, 0), this.h));
  }

  /**
   * Encrypt the next `plaintext`; every call but the last gives exactly `chunkBytes`.
   * Calls may overlap: each is placed by the order of the calls. WebCrypto copies
   * `plaintext` during the call, so the caller may fill it again at once.
   * @returns {Promise<Uint8Array>} the ciphertext, as long as the plaintext
   */
  update(plaintext) {
    if (this.ended) throw new Error("this GCM stream has ended");
    if (plaintext.length !== this.chunkBytes) {
      if (plaintext.length > this.chunkBytes) throw new RangeError("a chunk is larger than announced");
      this.ended = plaintext.length % BLOCK !== 0 || plaintext.length < this.chunkBytes;
    }
    const offset = this.dataBytes / BLOCK;
    this.dataBytes += plaintext.length;
    if (this.dataBytes > MAX_GCM_BYTES) throw new RangeError("GCM encrypts at most 64 GiB with one nonce");
    const blocks = Math.ceil(plaintext.length / BLOCK);
    const stepPower = blocks === this.chunkBytes / BLOCK ? this.chunkPower : power(this.h, blocks);
    const ciphertext = this.subtle
      .encrypt({ name: "AES-CTR", counter: counterAt(this.first, offset), length: 32 }, this.ctr, plaintext)
      .then((buffer) => new Uint8Array(buffer));
    const part = ciphertext.then((data) => (data.length ? this.ghashPart(data) : null));
    this.folded = Promise.all([this.folded, part]).then(([folded, own]) =>
      own === null ? folded : xor(multiply(folded, stepPower), own),
    );
    return ciphertext;
  }

  /** The 16-byte tag, once every update has been folded in. */
  async finish() {
    this.ended = true;
    const folded = await this.folded;
    const ghash = xor(folded, multiply(lengthBlock(this.aadBytes, this.dataBytes), this.h));
    return xor(ghash, this.tagMask);
  }
}
