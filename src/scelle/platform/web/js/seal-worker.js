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

import { createSHA256 } from "hash-wasm";
import { Upload } from "tus-js-client";
import { CHUNK_SIZE, SealError, hashFiles, sealedParts } from "./seal.js";

export { GcmEncryptor } from "./gcm.js";
export { envelopeSize, freshKeys, hashFiles, plannedArchiveSize, recipientInfos, sealedParts } from "./seal.js";
export { layout, manifestBytes } from "./zip.js";

/** Bytes per PATCH: the most sent again after an interruption (as the command). */
const UPLOAD_CHUNK_BYTES = 16 << 20;
/** Retries of a failed PATCH before the page is told; tus continues from the server's offset. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

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
    this.restart();
  }

  restart() {
    this.parts = sealedParts(this.keys, this.meta, this.files);
    this.position = 0; // bytes of the envelope produced so far
    this.kept = []; // produced pieces not yet sent, from `keptStart`
    this.keptStart = 0;
    this.digest = null; // the whole envelope's SHA-256, computed as it is produced
  }

  async produceUntil(end) {
    if (this.digest === null) {
      this.digest = await createSHA256();
      this.digest.init();
    }
    while (this.position < end) {
      const { value, done } = await this.parts.next();
      if (done) break;
      this.digest.update(value);
      this.kept.push(value);
      this.position += value.length;
      this.progress(this.position);
    }
  }

  async slice(start, end) {
    if (start < this.keptStart) this.restart();
    await this.produceUntil(end);
    // Forget what lies before `start`: the server has it.
    while (this.kept.length && this.keptStart + this.kept[0].length <= start) {
      this.keptStart += this.kept.shift().length;
    }
    const value = new Uint8Array(Math.min(end, this.position) - start);
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
    await this.produceUntil(Infinity);
    if (this.position !== this.size) throw new SealError("size-mismatch");
    return this.digest.digest("hex");
  }

  close() {}
}

/** Seal to nowhere, counting: what sealing alone costs (bench/browser_seal.py). */
async function sealToSink(keys, meta, files, report) {
  const digest = await createSHA256();
  digest.init();
  let size = 0;
  for await (const part of sealedParts(keys, meta, files)) {
    digest.update(part);
    size += part.length;
    report({ sealed: size });
  }
  return { size, sha256: digest.digest("hex") };
}

let current = null; // the upload in course: {upload, resolve, reject}

function uploadEnvelope(source, url, token, report) {
  return new Promise((resolve, reject) => {
    const upload = new Upload(source, {
      uploadUrl: url,
      uploadSize: source.size,
      chunkSize: UPLOAD_CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
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

