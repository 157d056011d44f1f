// The SHA-256 of an envelope as it is sealed, on its own thread: the sealing worker
// sends it batches of the envelope's bytes (transferred, in order) and asks for
// the digest at the end. WebCrypto has no incremental SHA-256; hash-wasm's runs here.
//
//   ArrayBuffer          → {op: "ack", buffer} once hashed, the buffer given back for
//                          the sender to fill again (it keeps a few in flight)
//   {op: "reset"}        start a new envelope
//   {op: "digest", id}   → {op: "digest", id, hex}

import { createSHA256 } from "hash-wasm";

const ready = createSHA256().then((sha) => sha.init());
globalThis.onmessage = async ({ data }) => {
  const sha = await ready; // in order: continuations run as the messages came
  if (data instanceof ArrayBuffer) {
    sha.update(new Uint8Array(data));
    globalThis.postMessage({ op: "ack", buffer: data }, [data]);
  } else if (data.op === "reset") {
    sha.init();
  } else if (data.op === "digest") {
    globalThis.postMessage({ op: "digest", id: data.id, hex: sha.digest("hex") });
    sha.init();
  }
};
