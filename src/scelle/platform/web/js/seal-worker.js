// The deposit page's worker: it hashes the chosen files, seals each envelope and
// streams it to the platform's tus endpoint (tus-js-client), off the page's thread.
// Nothing unencrypted leaves it but the progress counts.
//
// Messages from the page:
//   {op: "hash", entries: [{name, file}]}           → {op: "hashed", files}
//   {op: "seal", keys, meta, files, upload, token}  → {op: "sealed", size, sha256}
//        upload: the tus URL, or null to seal to a sink (benchmarks); every
//        answer carries the request's `id`; progress comes as {op: "progress"}.
//   {op: "pause"} / {op: "resume"}                  the upload in course
// Errors come back as {op: "failed", code, values, message}.
//
// The module also exports its parts, for the tests that check them in a browser.

import { DefaultHttpStack, Upload } from "tus-js-client";
import { makeKit } from "./proof-kit.js";
import { SealError, hashFiles, sealedParts } from "./seal.js";

export { GcmEncryptor } from "./gcm.js";
export { envelopeSize, freshKeys, hashFiles, plannedArchiveSize, recipientInfos, sealedParts } from "./seal.js";
export { layout, manifestBytes } from "./zip.js";

/** Bytes per PATCH: the most sent again after an interruption (as the command). */
const UPLOAD_CHUNK_BYTES = 16 << 20;
/** Retries of a failed PATCH before the page is told; tus continues from the server's offset. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
/** A request that moves no byte for this long is given up, as a failure tus retries. */
const STALL_MS = 60_000;
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

const HASH_BATCH_BYTES = 4 << 20;
const HASH_BATCHES_IN_FLIGHT = 2;

/**
 * The SHA-256 of a stream of pieces, computed by the hash worker on another thread
 * (the receipt is checked against it). At most a few batches wait there: sealing
 * waits for hashing rather than fill memory.
 */
class ParallelDigest {
  constructor() {
    this.worker = new Worker(new URL("./hash-worker.js", import.meta.url), { type: "module" });
    this.inFlight = 0;
    this.spare = [];
    this.acked = null;
    this.answers = new Map();
    this.worker.onmessage = ({ data }) => {
      if (data.op === "ack") {
        this.inFlight -= 1;
        // The same few buffers go back and forth: no garbage for either thread's GC.
        if (data.buffer.byteLength === HASH_BATCH_BYTES) this.spare.push(new Uint8Array(data.buffer));
        this.acked?.();
      } else if (data.op === "digest") {
        this.answers.get(data.id)(data.hex);
      }
    };
    this.reset();
  }

  reset() {
    this.worker.postMessage({ op: "reset" });
    this.batch ??= new Uint8Array(HASH_BATCH_BYTES);
    this.filled = 0;
  }

  async update(piece) {
    let at = 0;
    while (at < piece.length) {
      const step = Math.min(piece.length - at, HASH_BATCH_BYTES - this.filled);
      this.batch.set(piece.subarray(at, at + step), this.filled);
      this.filled += step;
      at += step;
      if (this.filled === HASH_BATCH_BYTES) await this.flush();
    }
  }

  async flush() {
    while (this.inFlight >= HASH_BATCHES_IN_FLIGHT) await new Promise((resolve) => (this.acked = resolve));
    const sent = this.filled === this.batch.length ? this.batch : this.batch.slice(0, this.filled);
    this.inFlight += 1;
    this.worker.postMessage(sent.buffer, [sent.buffer]);
    this.batch = this.spare.pop() ?? new Uint8Array(HASH_BATCH_BYTES);
    this.filled = 0;
  }

  async hex() {
    if (this.filled) await this.flush();
    const id = Math.random();
    return new Promise((resolve) => {
      this.answers.set(id, resolve);
      this.worker.postMessage({ op: "digest", id });
    });
  }

  close() {
    this.worker.terminate();
  }
}

/**
 * The envelope as a tus source: `slice(start, end)` gives its bytes, sealing
 * as they are asked for. A slice before what is kept (the server lost bytes, or
 * the upload resumes after a reload) seals again from the start (DESIGN.md:
 * "re-encrypts from the start (cheap) and sends only the bytes the server lacks").
 */
export class SealedSource {
  constructor(keys, meta, files, size, progress = () => {}) {
    this.keys = keys;
    this.meta = meta;
    this.files = files;
    this.size = size;
    this.progress = progress;
    this.checksums = new Map();
    this.digest = new ParallelDigest();
    this.sliced = Promise.resolve();
    this.restart();
  }

  restart() {
    this.parts = sealedParts(this.keys, this.meta, this.files);
    this.position = 0; // bytes of the envelope produced so far
    this.kept = []; // produced pieces not yet sent, from `keptStart`
    this.keptStart = 0;
    this.failure = null;
    this.digest.reset();
  }

  async produceUntil(end) {
    while (this.position < end) {
      const { value, done } = await this.parts.next();
      if (done) break;
      await this.digest.update(value);
      this.kept.push(value);
      this.position += value.length;
      this.progress(this.position);
    }
  }

  /**
   * One slice at a time, the sealing stream and its digest being shared (tus may ask
   * again before an abandoned request's slice ended: a pause, a retry). While a chunk
   * goes up, the next one is sealed: one chunk ahead at most.
   */
  slice(start, end) {
    const next = this.sliced.then(() => this.sliceNow(start, end));
    const ahead = () =>
      this.produceUntil(Math.min(this.size, end + (end - start))).catch((error) => {
        this.failure = error; // the next slice says it
      });
    this.sliced = next.then(ahead, () => {}); // never fails: `ahead` keeps its error
    return next;
  }

  async sliceNow(start, end) {
    if (start < this.keptStart) this.restart();
    if (this.failure) throw this.failure;
    await this.produceUntil(end);
    // Forget what lies before `start`: the server has it.
    while (this.kept.length && this.keptStart + this.kept[0].length <= start) {
      this.keptStart += this.kept.shift().length;
    }
    const value = new Uint8Array(Math.max(0, Math.min(end, this.position) - start));
    let at = this.keptStart;
    for (const piece of this.kept) {
      const from = Math.max(start, at);
      const to = Math.min(end, at + piece.length);
      if (from < to) value.set(piece.subarray(from - at, to - at), from - start);
      at += piece.length;
    }
    this.checksums.set(start, toBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", value))));
    return { value: new Blob([value]), done: start + value.length >= this.size };
  }

  /** The SHA-256 of the whole envelope, once every byte was produced (hex). */
  async finish() {
    await this.sliced;
    await this.produceUntil(Infinity);
    if (this.position !== this.size) throw new SealError("size-mismatch");
    const hex = await this.digest.hex();
    this.digest.close();
    return hex;
  }

  close() {}
}

/** Seal to nowhere, counting: what sealing alone costs (bench/browser_seal.py). */
async function sealToSink(keys, meta, files, report) {
  const digest = new ParallelDigest();
  let size = 0;
  for await (const part of sealedParts(keys, meta, files)) {
    await digest.update(part);
    size += part.length;
    report({ sealed: size });
  }
  const sha256 = await digest.hex();
  digest.close();
  return { size, sha256 };
}

/**
 * tus's HTTP requests, each failed when it moves no byte for `stallMs`: a line gone
 * silent without closing (a dropped Wi-Fi, a NAT forgetting the connection) would
 * otherwise hold the upload for as long as TCP takes to give up, a quarter of an hour.
 * tus then retries from the platform's offset, as after any failure.
 */
export class WatchedHttpStack {
  constructor(stallMs = STALL_MS) {
    this.inner = new DefaultHttpStack();
    this.stallMs = stallMs;
  }

  createRequest(method, url) {
    const request = this.inner.createRequest(method, url);
    const { stallMs } = this;
    const send = request.send.bind(request);
    const setProgressHandler = request.setProgressHandler.bind(request);
    let moved = () => {};
    request.setProgressHandler = (handler) =>
      setProgressHandler((bytes) => {
        moved();
        handler(bytes);
      });
    request.send = (body) =>
      new Promise((resolve, reject) => {
        let timer = null;
        moved = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            request.abort(); // no event of its own for tus: the rejection below is the one
            reject(new Error(`no byte moved for ${stallMs / 1000} s`));
          }, stallMs);
        };
        moved();
        send(body).then(resolve, reject).finally(() => clearTimeout(timer));
      });
    return request;
  }

  getName() {
    return "WatchedHttpStack";
  }
}

let current = null; // the upload in course: {upload}

function uploadEnvelope(source, url, token, report) {
  return new Promise((resolve, reject) => {
    const upload = new Upload(source, {
      uploadUrl: url,
      uploadSize: source.size,
      chunkSize: UPLOAD_CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      httpStack: new WatchedHttpStack(),
      headers: { Authorization: `Bearer ${token}` },
      storeFingerprintForResuming: false,
      fileReader: { openFile: async () => source },
      onBeforeRequest(request) {
        if (request.getMethod() === "PATCH") {
          const checksum = source.checksums.get(Number(request.getHeader("Upload-Offset")));
          if (checksum) request.setHeader("Upload-Checksum", `sha256 ${checksum}`);
        }
      },
      onAfterResponse(request) {
        if (request.getMethod() === "PATCH") source.checksums.delete(Number(request.getHeader("Upload-Offset")));
      },
      onProgress(sent) {
        report({ sent });
      },
      onSuccess() {
        resolve();
      },
      onError(error) {
        const status = error.originalResponse?.getStatus?.() ?? 0;
        let body = null;
        try {
          body = JSON.parse(error.originalResponse?.getBody?.() ?? "null");
        } catch {
          body = null;
        }
        reject(Object.assign(new SealError("upload-failed", { status, detail: body?.detail ?? "" }), { cause: error }));
      },
    });
    current = { upload };
    upload.start();
  });
}

async function handle(message, reply) {
  const report = (values) => reply({ op: "progress", ...values });
  if (message.op === "hash") {
    const files = await hashFiles(message.entries, (bytes) => report({ hashed: bytes }));
    return { op: "hashed", files };
  }
  if (message.op === "seal") {
    const { keys, meta, files, upload, token, size } = message;
    if (!upload) return { op: "sealed", ...(await sealToSink(keys, meta, files, report)) };
    const source = new SealedSource(keys, meta, files, size, (sealed) => report({ sealed }));
    await uploadEnvelope(source, upload, token, report);
    const sha256 = await source.finish();
    current = null;
    return { op: "sealed", size: source.size, sha256 };
  }
  if (message.op === "proof-kit") {
    // Here, not in the page: Argon2id runs as WebAssembly, which the page's strict
    // Content-Security-Policy does not allow.
    const { receipt, envelopes, contentKeys, password } = message;
    return { op: "proof-kit", kit: await makeKit(receipt, envelopes, contentKeys, password) };
  }
  throw new Error(`unknown request ${message.op}`);
}

const inWorker = typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope;
if (inWorker) {
  globalThis.onmessage = async ({ data }) => {
    const reply = (answer) => globalThis.postMessage({ id: data.id, ...answer });
    if (data.op === "pause") {
      current?.upload.abort();
      return;
    }
    if (data.op === "resume") {
      current?.upload.start();
      return;
    }
    try {
      reply(await handle(data, reply));
    } catch (error) {
      reply({
        op: "failed",
        code: error instanceof SealError ? error.code : "internal",
        values: error instanceof SealError ? error.values : {},
        message: String(error?.message ?? error),
      });
    }
  };
}

