// Test helpers run in the page by tests/e2e/test_browser_sealing.py, over the served
// bundle imported as window.sealing. Bytes travel as hex or base64 text.

window.gcmCases = async (cases) => {
  const bytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const out = [];
  for (const c of cases) {
    try {
      const gcm = await window.sealing.GcmEncryptor.create(bytes(c.key), bytes(c.iv), bytes(c.aad), c.chunk);
      const pt = c.size === undefined ? bytes(c.pt) : new Uint8Array(c.size).map((_, i) => (i * 7 + c.seed) & 255);
      const parts = [];
      for (let at = 0; at < pt.length; at += c.chunk) parts.push(gcm.update(pt.subarray(at, at + c.chunk)));
      const ct = await Promise.all(parts);
      const tag = await gcm.finish();
      if (c.size === undefined) out.push(ct.map(hex).join("") + hex(tag));
      else {
        const whole = new Uint8Array(await crypto.subtle.digest("SHA-256", new Blob(ct).size ? await new Blob(ct).arrayBuffer() : new Uint8Array(0)));
        out.push(hex(whole) + hex(tag));
      }
    } catch (error) {
      out.push(`error: ${error.message}`);
    }
  }
  return out;
};

window.layoutParts = async ({manifest, crc, files}) => {
  const bytes = Uint8Array.from(atob(manifest), (c) => c.charCodeAt(0));
  const parts = window.sealing.layout(bytes, crc, files);
  const headers = parts.filter((p) => p instanceof Uint8Array);
  const joined = new Uint8Array(await new Blob(headers).arrayBuffer());
  let text = "";
  for (let i = 0; i < joined.length; i += 0x8000) text += String.fromCharCode(...joined.subarray(i, i + 0x8000));
  return { headers: btoa(text), sizes: parts.map((p) => p.length ?? p.size) };
};

window.sealFiles = async ({files, certificates, contentKey, nonce, meta}) => {
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const s = window.sealing;
  const entries = files.map((f) => ({ name: f.name, file: new File([bytes(f.data)], f.name.split("/").pop()) }));
  const keyBytes = bytes(contentKey);
  const infos = await s.recipientInfos(keyBytes, certificates.map(bytes));
  const hashed = await s.hashFiles(entries);
  const parts = [];
  for await (const part of s.sealedParts({ contentKey: keyBytes, nonce: bytes(nonce), recipientInfos: infos }, meta, hashed)) parts.push(part);
  const whole = new Uint8Array(await new Blob(parts).arrayBuffer());
  const planned = s.envelopeSize(infos.length, s.plannedArchiveSize(meta, files.map((f) => ({ name: f.name, size: bytes(f.data).length }))));
  const b64 = (b) => { let t = ""; for (let i = 0; i < b.length; i += 0x8000) t += String.fromCharCode(...b.subarray(i, i + 0x8000)); return btoa(t); };
  return { envelope: b64(whole), infos: b64(infos), planned };
};
