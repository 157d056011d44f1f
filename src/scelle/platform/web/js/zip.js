// What an envelope holds, built in the page exactly as core/archive.py builds it:
// a stored ZIP (ZIP64 when needed) led by manifest.json, files sorted by the
// UTF-8 bytes of their names, dated 1980-01-01, sizes and CRC-32 in the local
// headers. Pass 1 (the worker) hashes the files; the layout below needs only
// names, sizes and CRC-32s, so the archive's size is known before hashing.

import { compareBytes, concat } from "./der.js";

export const MANIFEST_NAME = "manifest.json";
export const MANIFEST_FORMAT = "scelle-envelope/1";
export const MAX_FILES = 20000;
const MAX_NAME_BYTES = 1024;
const MAX_COMPONENT_BYTES = 255;
const ZIP32_LIMIT = 0xffffffff;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const UTF8_NAMES = 0x0800;
const VERSION_ZIP32 = 20;
const VERSION_ZIP64 = 45;
const MADE_BY_UNIX = 3 << 8;
const REGULAR_FILE = 0o100644 * 0x10000;

const encoder = new TextEncoder();

/** Why a name cannot go in an envelope (as core.archive.check_member_name), or null. */
export function nameProblem(name) {
  if (!name || !name.isWellFormed()) return "unusable";
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_NAME_BYTES) return "unusable";
  const parts = name.split("/");
  if (parts.some((part) => encoder.encode(part).length > MAX_COMPONENT_BYTES)) return "too-long";
  if (
    name.includes("\\") ||
    name.startsWith("/") ||
    (name.length > 1 && name[1] === ":") ||
    parts.some((part) => part === "" || part === "." || part === "..") ||
    [...name].some((char) => char.codePointAt(0) < 0x20)
  ) {
    return "unsafe";
  }
  if (name === MANIFEST_NAME) return "manifest";
  return null;
}

/** Files in the order the archive holds them: by the UTF-8 bytes of their names. */
export function sortFiles(files) {
  return [...files]
    .map((file) => ({ file, key: encoder.encode(file.name) }))
    .sort((a, b) => compareBytes(a.key, b.key))
    .map(({ file }) => file);
}

/** manifest.json, byte for byte as Python's json.dumps(indent=1, sort_keys=True) writes it. */
export function manifestBytes({ tender, envelope, bidder, files }) {
  const document = {
    bidder,
    envelope,
    files: files.map((file) => ({ name: file.name, sha256: file.sha256, size: file.size })),
    format: MANIFEST_FORMAT,
    tender,
  };
  return encoder.encode(JSON.stringify(document, null, 1));
}

function writer(size) {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  return {
    bytes,
    u16(value) {
      view.setUint16(at, value, true);
      at += 2;
    },
    u32(value) {
      view.setUint32(at, value, true);
      at += 4;
    },
    u64(value) {
      view.setBigUint64(at, BigInt(value), true);
      at += 8;
    },
    raw(value) {
      bytes.set(value, at);
      at += value.length;
    },
  };
}

function localHeader(name, size, crc) {
  const zip64 = size >= ZIP32_LIMIT;
  const out = writer(30 + name.length + (zip64 ? 20 : 0));
  out.u32(0x04034b50);
  out.u16(zip64 ? VERSION_ZIP64 : VERSION_ZIP32);
  out.u16(UTF8_NAMES);
  out.u16(0); // stored
  out.u16(0); // time
  out.u16(DOS_DATE);
  out.u32(crc);
  out.u32(zip64 ? ZIP32_LIMIT : size);
  out.u32(zip64 ? ZIP32_LIMIT : size);
  out.u16(name.length);
  out.u16(zip64 ? 20 : 0);
  out.raw(name);
  if (zip64) {
    out.u16(0x0001);
    out.u16(16);
    out.u64(size);
    out.u64(size);
  }
  return out.bytes;
}

function centralHeader(name, size, crc, offset) {
  const values = [];
  if (size >= ZIP32_LIMIT) values.push(size, size);
  if (offset >= ZIP32_LIMIT) values.push(offset);
  const extra = values.length ? 4 + 8 * values.length : 0;
  const version = values.length ? VERSION_ZIP64 : VERSION_ZIP32;
  const out = writer(46 + name.length + extra);
  out.u32(0x02014b50);
  out.u16(MADE_BY_UNIX | version);
  out.u16(version);
  out.u16(UTF8_NAMES);
  out.u16(0);
  out.u16(0);
  out.u16(DOS_DATE);
  out.u32(crc);
  out.u32(Math.min(size, ZIP32_LIMIT));
  out.u32(Math.min(size, ZIP32_LIMIT));
  out.u16(name.length);
  out.u16(extra);
  out.u16(0); // comment
  out.u16(0); // disk
  out.u16(0); // internal attributes
  out.u32(REGULAR_FILE);
  out.u32(Math.min(offset, ZIP32_LIMIT));
  out.raw(name);
  if (values.length) {
    out.u16(0x0001);
    out.u16(8 * values.length);
    for (const value of values) out.u64(value);
  }
  return out.bytes;
}

function endRecords(entries, directorySize, directoryOffset) {
  const zip64 = entries >= 0xffff || directorySize >= ZIP32_LIMIT || directoryOffset >= ZIP32_LIMIT;
  const out = writer((zip64 ? 56 + 20 : 0) + 22);
  if (zip64) {
    out.u32(0x06064b50);
    out.u64(44);
    out.u16(MADE_BY_UNIX | VERSION_ZIP64);
    out.u16(VERSION_ZIP64);
    out.u32(0);
    out.u32(0);
    out.u64(entries);
    out.u64(entries);
    out.u64(directorySize);
    out.u64(directoryOffset);
    out.u32(0x07064b50);
    out.u32(0);
    out.u64(directoryOffset + directorySize);
    out.u32(1);
  }
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(Math.min(entries, 0xffff));
  out.u16(Math.min(entries, 0xffff));
  out.u32(Math.min(directorySize, ZIP32_LIMIT));
  out.u32(Math.min(directoryOffset, ZIP32_LIMIT));
  out.u16(0);
  return out.bytes;
}

/**
 * The archive as a list of parts: header bytes (Uint8Array) and members' contents
 * ({ file, size }, `file` null for the manifest whose bytes come as `bytes`).
 * @param {Uint8Array} manifest manifest.json's bytes
 * @param {number} manifestCrc its CRC-32
 * @param {{name: string, size: number, crc32: number}[]} files sorted, as `sortFiles` gives
 */
export function layout(manifest, manifestCrc, files) {
  const members = [
    { name: encoder.encode(MANIFEST_NAME), size: manifest.length, crc: manifestCrc, bytes: manifest },
    ...files.map((file) => ({ name: encoder.encode(file.name), size: file.size, crc: file.crc32, file })),
  ];
  const parts = [];
  const central = [];
  let offset = 0;
  for (const member of members) {
    central.push(centralHeader(member.name, member.size, member.crc, offset));
    const header = localHeader(member.name, member.size, member.crc);
    offset += header.length + member.size;
    parts.push(header, member.bytes ?? { file: member.file, size: member.size });
  }
  const directory = concat(central);
  parts.push(directory, endRecords(members.length, directory.length, offset));
  return parts;
}

/** The archive's length in bytes; the manifest's own length is all it needs of pass 1. */
export function archiveSize(manifestLength, files) {
  const parts = layout(new Uint8Array(manifestLength), 0, files.map((f) => ({ ...f, crc32: 0 })));
  return parts.reduce((total, part) => total + (part instanceof Uint8Array ? part.length : part.size), 0);
}
