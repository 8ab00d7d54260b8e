/**
 * The checkpoint state file: sorted key/value entries in checksummed blocks, a block index and
 * a footer. Written by streaming (keys in increasing byte order, memory bounded by one block
 * and the index); read by binary search over the index without loading the entries.
 *
 * Layout (little-endian): header `"PCWALKV1"` u32 version (1) u32 CRC32C of the 12 bytes before;
 * blocks `[u32 crc][u32 body length][u32 count]` then entries `[u16 key length][u32 value length
 * (0xFFFFFFFF: deleted)][key][value]`, the CRC covering everything after it; the index: per
 * block `[u64 offset][u32 length][u16 first key length][first key]`; the 40-byte footer
 * `[u64 index offset][u64 entries][u32 blocks][u32 index length][u32 index CRC][u32 footer
 * CRC]["PCKVEND1"]`.
 *
 * @module
 */

import { crc32c, crc32cUpdate } from "./crc32c.ts";
import { PerCoreWalError } from "./errors.ts";
import {
  createWritableFile,
  ioError,
  isMissing,
  openRegularFile,
  readFullyAt,
  removePath,
  type WritableFile,
} from "./fs.ts";

const MAGIC = new TextEncoder().encode("PCWALKV1");
const END_MAGIC = new TextEncoder().encode("PCKVEND1");
const HEADER = 16;
const FOOTER = 40;
const BLOCK_HEADER = 12;
const TOMBSTONE = 0xffffffff;
const BLOCK_TARGET = 64 * 1024;

/** Compares byte strings lexicographically. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** A key as a string whose order is the bytes' order (one char per byte). */
export function keyString(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i += 8192) {
    s += String.fromCharCode.apply(null, key.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/**
 * Copies of byte strings packed into 1 MiB chunks: for data that is kept (one memory copy, no
 * ArrayBuffer per item). A chunk lives as long as any copy in it.
 */
export class ByteArena {
  #chunk = new Uint8Array(1 << 20);
  #pos = 0;

  /** A copy of `bytes` that stays valid. */
  copy(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    if (n > 65536) return bytes.slice();
    if (this.#pos + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(1 << 20);
      this.#pos = 0;
    }
    const out = this.#chunk.subarray(this.#pos, this.#pos + n);
    out.set(bytes);
    this.#pos += n;
    return out;
  }
}

/** What a finished file is: its size, entries and CRC32C of all its bytes. */
export interface StateFileSummary {
  /** Bytes. */
  size: number;
  /** Entries (tombstones included). */
  entries: number;
  /** CRC32C of the whole file. */
  crc32c: number;
}

/** Writes a state file from entries given in increasing key order. */
export class StateFileWriter {
  readonly path: string;
  readonly #file: WritableFile;
  #block = new Uint8Array(BLOCK_TARGET + BLOCK_HEADER);
  #blockView = new DataView(this.#block.buffer);
  #blockLen = BLOCK_HEADER;
  #blockCount = 0;
  #blockFirst: Uint8Array | undefined;
  #index: BlockRef[] = [];
  #offset = 0;
  #entries = 0;
  #crc = 0xffffffff;
  #last: Uint8Array | undefined;

  private constructor(path: string, file: WritableFile) {
    this.path = path;
    this.#file = file;
  }

  /** Creates (or replaces) the file. */
  static create(path: string, mode = 0o600): StateFileWriter {
    // Through the DurabilityOps seam: the power-loss simulator loses what was not fsynced.
    const file = createWritableFile(path, mode);
    const w = new StateFileWriter(path, file);
    const h = new Uint8Array(HEADER);
    h.set(MAGIC);
    const v = new DataView(h.buffer);
    v.setUint32(8, 1, true);
    v.setUint32(12, crc32c(h, 0, 12), true);
    w.#write(h);
    return w;
  }

  /** Adds an entry; `value` undefined records a deletion. Keys must increase strictly. */
  add(key: Uint8Array, value: Uint8Array | undefined): void {
    if (this.#last !== undefined && compareBytes(key, this.#last) <= 0) {
      throw new RangeError("state file keys must be added in strictly increasing order");
    }
    this.#last = key;
    const need = 6 + key.length + (value?.length ?? 0);
    if (this.#blockLen > BLOCK_HEADER && this.#blockLen + need > BLOCK_TARGET) this.#flushBlock();
    if (BLOCK_HEADER + need > this.#block.length) {
      this.#block = new Uint8Array(BLOCK_HEADER + need);
      this.#blockView = new DataView(this.#block.buffer);
    }
    const p = this.#blockLen;
    this.#blockView.setUint16(p, key.length, true);
    this.#blockView.setUint32(p + 2, value === undefined ? TOMBSTONE : value.length, true);
    this.#block.set(key, p + 6);
    if (value !== undefined) this.#block.set(value, p + 6 + key.length);
    this.#blockLen += need;
    this.#blockFirst ??= key.slice();
    this.#blockCount++;
    this.#entries++;
  }

  #flushBlock(): void {
    if (this.#blockCount === 0) return;
    const v = this.#blockView;
    v.setUint32(4, this.#blockLen - BLOCK_HEADER, true);
    v.setUint32(8, this.#blockCount, true);
    v.setUint32(0, crc32c(this.#block, 4, this.#blockLen), true);
    this.#index.push({ offset: this.#offset, length: this.#blockLen, first: this.#blockFirst! });
    this.#write(this.#block.subarray(0, this.#blockLen));
    if (this.#block.length > BLOCK_TARGET + BLOCK_HEADER) {
      this.#block = new Uint8Array(BLOCK_TARGET + BLOCK_HEADER);
      this.#blockView = new DataView(this.#block.buffer);
    }
    this.#blockLen = BLOCK_HEADER;
    this.#blockCount = 0;
    this.#blockFirst = undefined;
  }

  #write(bytes: Uint8Array): void {
    this.#crc = crc32cUpdate(this.#crc, bytes);
    this.#file.write(bytes);
    this.#offset += bytes.length;
  }

  /** Writes the index and the footer, fsyncs and closes the file. */
  finish(): StateFileSummary {
    this.#flushBlock();
    const indexOffset = this.#offset;
    let len = 0;
    for (const e of this.#index) len += 14 + e.first.length;
    const index = new Uint8Array(len);
    const iv = new DataView(index.buffer);
    let p = 0;
    for (const e of this.#index) {
      iv.setBigUint64(p, BigInt(e.offset), true);
      iv.setUint32(p + 8, e.length, true);
      iv.setUint16(p + 12, e.first.length, true);
      index.set(e.first, p + 14);
      p += 14 + e.first.length;
    }
    this.#write(index);
    const f = new Uint8Array(FOOTER);
    const fv = new DataView(f.buffer);
    fv.setBigUint64(0, BigInt(indexOffset), true);
    fv.setBigUint64(8, BigInt(this.#entries), true);
    fv.setUint32(16, this.#index.length, true);
    fv.setUint32(20, len, true);
    fv.setUint32(24, crc32c(index), true);
    fv.setUint32(28, crc32c(f, 0, 28), true);
    f.set(END_MAGIC, 32);
    this.#write(f);
    try {
      this.#file.sync();
    } finally {
      this.#file.close();
    }
    return { size: this.#offset, entries: this.#entries, crc32c: ~this.#crc >>> 0 };
  }

  /** Abandons the file (closes it; the caller removes it). */
  abort(): void {
    // close() is idempotent: a file finish() closed stays closed.
    this.#file.close();
  }
}

interface BlockRef {
  offset: number;
  length: number;
  first: Uint8Array;
}

/** A state file opened for lookups and ordered iteration; every block is checked when read. */
export class StateFile {
  readonly path: string;
  /** Entries in the file (tombstones included). */
  readonly entries: number;
  readonly #file: Deno.FsFile;
  readonly #index: BlockRef[];
  #cache = new Map<number, { keys: Uint8Array[]; values: (Uint8Array | undefined)[] }>();

  private constructor(path: string, file: Deno.FsFile, entries: number, index: BlockRef[]) {
    this.path = path;
    this.#file = file;
    this.entries = entries;
    this.#index = index;
  }

  /** Opens and checks the header, footer and index. Throws "Corrupted"/"ChecksumMismatch". */
  static open(path: string): StateFile {
    let file: Deno.FsFile;
    try {
      // Never a FIFO (its open would block), a device or a link: the module wrote a regular file.
      file = openRegularFile(path, "State file");
    } catch (e) {
      if (isMissing(e)) {
        throw new PerCoreWalError("SegmentNotFound", `State file "${path}" does not exist`, {
          segment: path,
        });
      }
      throw e;
    }
    try {
      const size = _fileSize(file, path);
      const bad = (why: string, code: "Corrupted" | "ChecksumMismatch" = "Corrupted") =>
        new PerCoreWalError(code, `State file "${path}": ${why}`, { segment: path });
      if (size < HEADER + FOOTER) throw bad("too short");
      const h = _readAt(file, 0, HEADER, path);
      if (!MAGIC.every((b, i) => h[i] === b)) throw bad("bad magic");
      if (crc32c(h, 0, 12) !== new DataView(h.buffer).getUint32(12, true)) {
        throw bad("header checksum", "ChecksumMismatch");
      }
      const f = _readAt(file, size - FOOTER, FOOTER, path);
      const fv = new DataView(f.buffer);
      if (!END_MAGIC.every((b, i) => f[32 + i] === b)) throw bad("bad footer (file cut short?)");
      if (crc32c(f, 0, 28) !== fv.getUint32(28, true)) {
        throw bad("footer checksum", "ChecksumMismatch");
      }
      const indexOffset = Number(fv.getBigUint64(0, true));
      const entries = Number(fv.getBigUint64(8, true));
      const blocks = fv.getUint32(16, true);
      const indexLen = fv.getUint32(20, true);
      if (indexOffset + indexLen + FOOTER !== size) throw bad("index out of place");
      const index = _readAt(file, indexOffset, indexLen, path);
      if (crc32c(index) !== fv.getUint32(24, true)) throw bad("index checksum", "ChecksumMismatch");
      const iv = new DataView(index.buffer);
      const out: BlockRef[] = [];
      let p = 0;
      for (let i = 0; i < blocks; i++) {
        const k = iv.getUint16(p + 12, true);
        out.push({
          offset: Number(iv.getBigUint64(p, true)),
          length: iv.getUint32(p + 8, true),
          first: index.slice(p + 14, p + 14 + k),
        });
        p += 14 + k;
      }
      return new StateFile(path, file, entries, out);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** The value of `key` (undefined if absent or deleted). */
  get(key: Uint8Array): Uint8Array | undefined {
    const b = this.#blockOf(key);
    if (b < 0) return undefined;
    const { keys, values } = this.#block(b);
    let lo = 0;
    let hi = keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareBytes(keys[mid], key);
      if (c === 0) return values[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Every entry in key order (tombstones as undefined values). */
  *[Symbol.iterator](): IterableIterator<[Uint8Array, Uint8Array | undefined]> {
    for (let b = 0; b < this.#index.length; b++) {
      const { keys, values } = this.#block(b, false);
      for (let i = 0; i < keys.length; i++) yield [keys[i], values[i]];
    }
  }

  #blockOf(key: Uint8Array): number {
    let lo = 0;
    let hi = this.#index.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(this.#index[mid].first, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  #block(b: number, cache = true) {
    const hit = this.#cache.get(b);
    if (hit !== undefined) return hit;
    const { offset, length } = this.#index[b];
    const bytes = _readAt(this.#file, offset, length, this.path);
    const v = new DataView(bytes.buffer);
    if (
      crc32c(bytes, 4, length) !== v.getUint32(0, true) ||
      v.getUint32(4, true) !== length - BLOCK_HEADER
    ) {
      throw new PerCoreWalError(
        "ChecksumMismatch",
        `State file "${this.path}": block at offset ${offset} is damaged`,
        {
          segment: this.path,
          offset,
        },
      );
    }
    const count = v.getUint32(8, true);
    const keys: Uint8Array[] = [];
    const values: (Uint8Array | undefined)[] = [];
    let p = BLOCK_HEADER;
    for (let i = 0; i < count; i++) {
      const k = v.getUint16(p, true);
      const vl = v.getUint32(p + 2, true);
      keys.push(bytes.subarray(p + 6, p + 6 + k));
      if (vl === TOMBSTONE) {
        values.push(undefined);
        p += 6 + k;
      } else {
        values.push(bytes.subarray(p + 6 + k, p + 6 + k + vl));
        p += 6 + k + vl;
      }
    }
    const block = { keys, values };
    if (cache) {
      if (this.#cache.size >= 16) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(b, block);
    }
    return block;
  }

  /** Closes the file. Idempotent. */
  close(): void {
    try {
      this.#file.close();
    } catch (e) {
      // Already closed.
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }
}

/** The size of an open file (fstat). */
function _fileSize(file: Deno.FsFile, path: string): number {
  try {
    return file.statSync().size;
  } catch (e) {
    throw ioError(e, "fstat", path);
  }
}

function _readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
  path: string,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let n: number;
  try {
    n = readFullyAt(file, out, offset);
  } catch (e) {
    throw ioError(e, "read", path, offset);
  }
  if (n < length) {
    throw new PerCoreWalError("Corrupted", `State file "${path}" is cut short at ${offset + n}`, {
      segment: path,
    });
  }
  return out;
}

/**
 * Changes (puts and deletes) collected in key order with bounded memory: above `maxBytes` the
 * collected changes are written, sorted, to a run file; {@linkcode mergeInto} merges the runs
 * and a previous state file into a new one, the latest change of a key winning.
 */
export class ChangeSet {
  readonly #dir: string;
  readonly #maxBytes: number;
  #map = new Map<string, { key: Uint8Array; value: Uint8Array | undefined }>();
  #arena = new ByteArena();
  #bytes = 0;
  readonly #runs: string[] = [];

  /** Collects changes, spilling runs into `dir` above `maxBytes` of keys and values. */
  constructor(dir: string, maxBytes = 64 * 1024 * 1024) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
  }

  /** Records that `key` is now `value` (undefined: deleted). */
  set(key: Uint8Array, value: Uint8Array | undefined): void {
    const k = keyString(key);
    const prev = this.#map.get(k);
    // Every copy counts (an overwritten value's copy stays in the arena until the next spill).
    this.#bytes += (value?.length ?? 0) + (prev === undefined ? key.length + 64 : 0);
    // Copies: decoded keys and values may be views of shared arenas, which would stay alive.
    this.#map.set(k, {
      key: prev?.key ?? this.#arena.copy(key),
      value: value && this.#arena.copy(value),
    });
    if (this.#bytes > this.#maxBytes) this.#spill();
  }

  /** How many run files were spilled so far. */
  get runs(): number {
    return this.#runs.length;
  }

  #spill(): void {
    const path = `${this.#dir}/run-${this.#runs.length}.kv`;
    const w = StateFileWriter.create(path);
    for (const k of [...this.#map.keys()].sort()) {
      const e = this.#map.get(k)!;
      w.add(e.key, e.value);
    }
    w.finish();
    this.#runs.push(path);
    this.#map.clear();
    this.#arena = new ByteArena();
    this.#bytes = 0;
  }

  /**
   * Writes `previous` (if any) with every change applied to a new state file, without
   * deletions; removes the run files. Returns the new file's summary.
   */
  mergeInto(previous: StateFile | undefined, out: StateFileWriter): StateFileSummary {
    const sources: Iterator<[Uint8Array, Uint8Array | undefined]>[] = [];
    const opened: StateFile[] = [];
    if (previous !== undefined) sources.push(previous[Symbol.iterator]());
    for (const r of this.#runs) {
      const f = StateFile.open(r);
      opened.push(f);
      sources.push(f[Symbol.iterator]());
    }
    const mem = [...this.#map.keys()].sort().map((k) => this.#map.get(k)!);
    sources.push(
      mem.map((e) => [e.key, e.value] as [Uint8Array, Uint8Array | undefined])[Symbol.iterator](),
    );
    try {
      // k-way merge by key; on equal keys the later source (a later change) wins.
      const heads = sources.map((s) => s.next());
      while (true) {
        let min: Uint8Array | undefined;
        for (const h of heads) {
          if (!h.done && (min === undefined || compareBytes(h.value[0], min) < 0)) min = h.value[0];
        }
        if (min === undefined) break;
        let value: Uint8Array | undefined;
        for (let i = 0; i < heads.length; i++) {
          const h = heads[i];
          if (!h.done && compareBytes(h.value[0], min) === 0) {
            value = h.value[1];
            heads[i] = sources[i].next();
          }
        }
        if (value !== undefined) out.add(min, value);
      }
      return out.finish();
    } catch (e) {
      out.abort();
      throw e;
    } finally {
      for (const f of opened) f.close();
      for (const r of this.#runs) removePath(r);
      this.#runs.length = 0;
    }
  }
}
