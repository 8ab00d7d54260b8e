/**
 * `ShipMarks`: the durable shipped positions of every shipper attached to a WAL, kept in the WAL
 * directory (`<walDir>/shippers/<name>.json`, one file per shipper, FORMAT.md section 12). A
 * registered shipper holds back the retirement of the segments it has not shipped
 * (`ship_retention.ts`), also across restarts: the files are the truth.
 *
 * Read side: imports neither the engine nor the io_uring binding.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { directoryMode, PerCoreWalConfig } from "./config.ts";
import { crc32c } from "./crc32c.ts";
import { PerCoreWalError } from "./errors.ts";
import { emitEvent, type WalEvent, type WalEventHandler } from "./events.ts";
import {
  isMissing,
  lstatIfExists,
  makeDirectory,
  readDirectory,
  readRegularFile,
  removeIfExists,
  renamePath,
  renamePathAsync,
  syncDirectory,
  syncDirectoryAsync,
  writeNewSyncedFile,
  writeNewSyncedFileAsync,
} from "./fs.ts";
import { lockFile } from "./lock.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { toPath } from "./path_arg.ts";
import { readWalMeta } from "./wal_meta.ts";

/** The `onEvent` each `ShipMarks` was opened with, for {@linkcode dropUnshipped}. */
const _handlers = new WeakMap<ShipMarks, WalEventHandler | undefined>();

/** The directory of the marks files, inside the WAL directory. */
export const SHIPPERS_DIR = "shippers";
/** Version of the marks file's JSON written (2: `gaps`); version 1 files are read too. */
const MARKS_VERSION = 2;
/** The largest marks file read: a few bytes per core are written. */
const MAX_MARKS_BYTES = 1024 * 1024;
/** A shipper's name: a plain file name, no dot first, no separator. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const MARKS_FILE = /^([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.json$/;
/** What a WAL id looks like (wal_meta.ts). */
const WAL_ID = /^[0-9a-f]{32}$/;

/**
 * Options of {@linkcode ShipMarks.open}.
 *
 * @example
 * ```ts
 * import { ShipMarks, type ShipMarksOptions } from "@percore/wal";
 *
 * const options: ShipMarksOptions = { onEvent: (e) => console.warn("WAL:", e.type) };
 * await using marks = ShipMarks.open("./data/wal", "nats", options);
 * ```
 */
export interface ShipMarksOptions {
  /** Told of `unshippedDropped` ({@linkcode dropUnshipped}); nothing is printed without it. */
  onEvent?: (event: WalEvent) => void;
}

/**
 * One registered shipper of a WAL, as its marks file says ({@linkcode ShipMarks.list}).
 *
 * @example
 * ```ts
 * import { ShipMarks, type ShipperMarks } from "@percore/wal";
 *
 * const all: ShipperMarks[] = ShipMarks.list("./data/wal");
 * for (const s of all) console.log(s.name, s.invalid ?? s.shipped.join(","));
 * ```
 */
export interface ShipperMarks {
  /** The shipper's name. */
  name: string;
  /** Per core, the last shipped sequence (0: nothing; a core beyond the array: 0). */
  shipped: number[];
  /**
   * Ranges given up unshipped whose gap marker the stream may lack yet (FORMAT.md section 12),
   * by core; empty when none (or in a version 1 file, or an invalid one).
   */
  gaps: PendingGap[];
  /** When the file was last written (ISO 8601), if it is valid. */
  updatedAt?: string;
  /**
   * Why the file is not trusted (torn, forged, a link, another WAL's): such a shipper holds
   * every segment of every core until it is removed ({@linkcode ShipMarks.remove}).
   */
  invalid?: string;
}

/**
 * A range of a core's entries given up unshipped ({@linkcode dropUnshipped}) whose gap marker the
 * central stream may not hold yet: the mark is past it, and a shipper declares it before that
 * core's next entries, also after a restart ({@linkcode ShipMarks.clearGap} once it did).
 *
 * @example
 * ```ts
 * import { ShipMarks, type PendingGap } from "@percore/wal";
 *
 * await using marks = ShipMarks.open("./data/wal", "nats");
 * const gap: PendingGap | undefined = marks.pendingGap(0);
 * if (gap) console.warn(`core 0: ${gap.fromSequence}..${gap.toSequence} to declare`);
 * ```
 */
export interface PendingGap {
  /** The core. */
  coreId: number;
  /** The first sequence given up. */
  fromSequence: number;
  /** The last sequence given up (at most the core's mark). */
  toSequence: number;
}

/**
 * The durable shipped positions of one shipper of a WAL. Opening registers the shipper: from then
 * on, checkpoints never retire a segment holding an entry above its mark for that core, also
 * after a restart, until {@linkcode ShipMarks.remove}. One `ShipMarks` of a name at a time
 * (flock; a second is refused with "Locked").
 *
 * @example
 * ```ts
 * import { PerCoreWalManager, ShipMarks } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2 });
 * await using marks = ShipMarks.open(manager.config, "nats");
 * const seq = manager.writer(0).appendPut("k", "v");
 * await manager.writer(0).waitDurable(seq);
 * // ... the entry reached the central stream:
 * await marks.advance(0, seq);
 * console.log(marks.shipped(0));
 * ```
 */
export class ShipMarks {
  /** The shipper's name. */
  readonly name: string;
  /** The WAL directory. */
  readonly walDir: string;
  /** The marks file. */
  readonly path: string;
  readonly #walId: string;
  readonly #fileMode: number;
  #lock: Deno.FsFile | undefined;
  #numCores: number;
  /** What the latest `advance` asked for, per core. */
  #target: number[];
  /** What the file holds (durable), per core. */
  #written: number[];
  /** The pending gaps asked (by core), and those the file holds. */
  #gapTarget: Map<number, PendingGap>;
  #gapWritten: Map<number, PendingGap>;
  /** Counts the changes of `#gapTarget`: a wait for one is settled by a write taken after it. */
  #gapChanges = 0;
  #gapChangesWritten = 0;
  #waiters: {
    coreId: number;
    sequence: number;
    /** The `#gapChanges` the write must include (0: any). */
    gapChange: number;
    resolve: () => void;
    reject: (e: unknown) => void;
  }[] = [];
  #writing = false;
  #closing: Promise<void> | undefined;

  private constructor(
    at: { walDir: string; name: string; walId: string; fileMode: number; numCores: number },
    lock: Deno.FsFile,
    shipped: number[],
    gaps: PendingGap[],
    onEvent: WalEventHandler | undefined,
  ) {
    this.name = at.name;
    this.walDir = at.walDir;
    this.path = marksPath(at.walDir, at.name);
    this.#walId = at.walId;
    this.#fileMode = at.fileMode;
    this.#numCores = at.numCores;
    this.#lock = lock;
    this.#target = shipped.slice();
    this.#written = shipped.slice();
    this.#gapTarget = new Map(gaps.map((g) => [g.coreId, g]));
    this.#gapWritten = new Map(this.#gapTarget);
    _handlers.set(this, onEvent);
  }

  /**
   * Registers shipper `name` of the WAL in `dir` (a path, a `file:` URL or its configuration),
   * or takes up its marks after a restart. The WAL must exist (its `wal.json` with an id). Throws
   * "Locked" while another `ShipMarks` of that name is open (in any process), "Corrupted",
   * "Unsafe" or "ConfigMismatch" for a marks file that is torn, forged, not a regular file or of
   * another WAL (nothing is overwritten: remove it with {@linkcode ShipMarks.remove}).
   */
  static open(
    dir: string | URL | PerCoreWalConfig,
    name: string,
    options: ShipMarksOptions = {},
  ): ShipMarks {
    checkOptionKeys(options, "ShipMarksOptions");
    if (options.onEvent !== undefined && typeof options.onEvent !== "function") {
      throw new TypeError(`onEvent must be a function, got ${typeof options.onEvent}`);
    }
    const { walDir, fileMode } = _where(dir);
    checkShipperName(name);
    const meta = _walIdentity(walDir);
    const shippers = _ensureShippersDir(walDir, fileMode);
    const lock = lockFile(
      `${shippers}/${name}.lock`,
      fileMode,
      `Shipper "${name}" of WAL "${walDir}" is attached already (its marks are open elsewhere)`,
    );
    try {
      const found = readShipperMarks(walDir, name, meta.walId);
      if (found !== undefined && found.invalid !== undefined) {
        const regular = lstatIfExists(marksPath(walDir, name))?.isFile === true;
        const code = !regular
          ? "Unsafe"
          : found.invalid.includes("another WAL")
          ? "ConfigMismatch"
          : "Corrupted";
        throw new PerCoreWalError(
          code,
          `Shipper marks "${marksPath(walDir, name)}" ${found.invalid}: refused (remove the ` +
            `shipper with ShipMarks.remove to start it again from nothing)`,
          { segment: marksPath(walDir, name) },
        );
      }
      const shipped = _padded(found?.shipped ?? [], meta.numCores);
      const at = { walDir, name, walId: meta.walId, fileMode, numCores: meta.numCores };
      const gaps = found?.gaps ?? [];
      const marks = new ShipMarks(at, lock, shipped, gaps, options.onEvent);
      // Registered once the file exists, durably: from then on checkpoints hold for it.
      if (found === undefined) _writeMarksSync(walDir, name, meta.walId, shipped, [], fileMode);
      return marks;
    } catch (e) {
      lock.close();
      throw e;
    }
  }

  /**
   * Detaches shipper `name` for good: its marks file goes (the segments it held may be retired
   * by the next checkpoint). Refused ("Locked") while its `ShipMarks` is open. False if there was
   * no such shipper.
   */
  static remove(dir: string | URL | PerCoreWalConfig, name: string): boolean {
    const { walDir, fileMode } = _where(dir);
    checkShipperName(name);
    const shippers = `${walDir}/${SHIPPERS_DIR}`;
    const kind = lstatIfExists(shippers);
    if (kind === undefined) return false;
    if (!kind.isDirectory || kind.isSymlink) throw _unsafeShippersDir(shippers);
    const lockPath = `${shippers}/${name}.lock`;
    const lock = lockFile(lockPath, fileMode, `Shipper "${name}" of WAL "${walDir}" is attached`);
    try {
      // unlink: a link in the file's place goes, what it names is untouched.
      const removed = removeIfExists(marksPath(walDir, name));
      removeIfExists(`${marksPath(walDir, name)}.tmp`);
      removeIfExists(lockPath);
      syncDirectory(shippers);
      return removed;
    } finally {
      lock.close();
    }
  }

  /** Every shipper registered with the WAL in `dir`, by name (invalid files included). */
  static list(dir: string | URL | PerCoreWalConfig): ShipperMarks[] {
    const { walDir } = _where(dir);
    return listShipperMarks(walDir, readWalMeta(walDir)?.walId ?? null);
  }

  /** The last shipped sequence of core `coreId` that is durable in the file (0: nothing). */
  shipped(coreId: number): number {
    this.#checkCore(coreId);
    return this.#written[coreId] ?? 0;
  }

  /**
   * Raises core `coreId`'s mark to `sequence` (never lowers it: a lower value changes nothing);
   * resolves when the file holding it (or a higher one) is durable. Writes are coalesced: at most
   * one is in flight, and it writes the latest marks of every core. A failed write rejects the
   * calls it covered; the next `advance` writes again.
   */
  advance(coreId: number, sequence: number): Promise<void> {
    try {
      this.#checkCore(coreId);
      if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
        throw new RangeError(`sequence must be an integer from 0 to 2^53 - 1, got ${sequence}`);
      }
      if (this.#lock === undefined || this.#closing !== undefined) {
        throw new PerCoreWalError("Closed", `Shipper marks "${this.name}" are closed`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (sequence > this.#target[coreId]) this.#target[coreId] = sequence;
    if (this.#written[coreId] >= sequence) return Promise.resolve();
    return this.#wait(coreId, sequence, 0);
  }

  /**
   * The range of core `coreId` given up unshipped whose gap marker the stream may lack, as the
   * file holds it (undefined: none).
   */
  pendingGap(coreId: number): PendingGap | undefined {
    this.#checkCore(coreId);
    const g = this.#gapWritten.get(coreId);
    return g === undefined ? undefined : { ...g };
  }

  /**
   * Gives up core `coreId`'s entries `fromSequence` to `toSequence` unshipped: raises its mark to
   * `toSequence` and records the range as a pending gap (merged with one pending: from the lower
   * start to the higher end), in the same durable write; resolves once the file holds both. A
   * shipper declares the gap in the stream before the core's next entries, also after a restart,
   * then calls {@linkcode clearGap}. Emits no event (see {@linkcode dropUnshipped}).
   */
  declareGap(coreId: number, fromSequence: number, toSequence: number): Promise<void> {
    try {
      this.#checkCore(coreId);
      for (const [what, v] of [["fromSequence", fromSequence], ["toSequence", toSequence]]) {
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
          throw new RangeError(`${what} must be an integer from 1 to 2^53 - 1, got ${v}`);
        }
      }
      if (toSequence < fromSequence) {
        throw new RangeError(`toSequence ${toSequence} is below fromSequence ${fromSequence}`);
      }
      this.#checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const was = this.#gapTarget.get(coreId);
    this.#gapTarget.set(coreId, {
      coreId,
      fromSequence: Math.min(was?.fromSequence ?? fromSequence, fromSequence),
      toSequence: Math.max(was?.toSequence ?? toSequence, toSequence),
    });
    if (toSequence > this.#target[coreId]) this.#target[coreId] = toSequence;
    return this.#wait(coreId, toSequence, ++this.#gapChanges);
  }

  /**
   * The stream holds core `coreId`'s gap marker (or entries) through `throughSequence`: the
   * pending gap loses what that covers (all of it, or its start). Resolves once the file says so.
   */
  clearGap(coreId: number, throughSequence: number): Promise<void> {
    try {
      this.#checkCore(coreId);
      this.#checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const g = this.#gapTarget.get(coreId);
    if (g === undefined || throughSequence < g.fromSequence) return Promise.resolve();
    if (throughSequence >= g.toSequence) this.#gapTarget.delete(coreId);
    else this.#gapTarget.set(coreId, { ...g, fromSequence: throughSequence + 1 });
    return this.#wait(coreId, 0, ++this.#gapChanges);
  }

  #checkOpen(): void {
    if (this.#lock === undefined || this.#closing !== undefined) {
      throw new PerCoreWalError("Closed", `Shipper marks "${this.name}" are closed`);
    }
  }

  #wait(coreId: number, sequence: number, gapChange: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ coreId, sequence, gapChange, resolve, reject });
    this.#kick();
    return promise;
  }

  /**
   * Writes what was asked and is not yet durable, then releases the name. Idempotent; `advance`
   * is refused from the call on.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#writing || !this.#allWritten()) {
        const { promise, resolve } = Promise.withResolvers<void>();
        // Settled only when nothing is left to write, or by a failed write.
        this.#waiters.push({
          coreId: 0,
          sequence: Infinity,
          gapChange: 0,
          resolve,
          reject: () => resolve(),
        });
        this.#kick();
        await promise;
      }
      this.#lock?.close();
      this.#lock = undefined;
    })();
    return this.#closing;
  }

  /** Closes the marks. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkCore(coreId: number): void {
    if (typeof coreId !== "number" || !Number.isInteger(coreId) || coreId < 0 || coreId > 1023) {
      throw new RangeError(`coreId must be an integer from 0 to 1023, got ${coreId}`);
    }
    if (coreId >= this.#numCores) {
      // Cores added since open (a manager reopened with more): wal.json says so.
      const n = readWalMeta(this.walDir)?.numCores ?? 0;
      if (coreId >= n) {
        throw new PerCoreWalError(
          "InvalidCoreId",
          `Core id ${coreId} is out of range: this WAL has cores 0 to ${n - 1}`,
          { coreId },
        );
      }
      this.#numCores = n;
      this.#target = _padded(this.#target, n);
      this.#written = _padded(this.#written, n);
    }
  }

  #allWritten(): boolean {
    return this.#gapChangesWritten === this.#gapChanges &&
      this.#target.every((v, c) => v === this.#written[c]);
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = true;
    void this.#flush();
  }

  /**
   * Writes the latest marks until the file holds them; settles the waits each write covers.
   * `#writing` is cleared in the same synchronous step as the last check (no wait is missed).
   */
  async #flush(): Promise<void> {
    try {
      while (true) {
        if (this.#allWritten()) {
          // Nothing left to write: the waits left are covered (close()'s own among them).
          for (const w of this.#waiters.splice(0)) w.resolve();
          return;
        }
        const snapshot = this.#target.slice();
        const gaps = new Map(this.#gapTarget);
        const changes = this.#gapChanges;
        await _writeMarks(
          this.walDir,
          this.name,
          this.#walId,
          snapshot,
          [...gaps.values()],
          this.#fileMode,
        );
        this.#written = snapshot;
        this.#gapWritten = gaps;
        this.#gapChangesWritten = changes;
        const left = [];
        for (const w of this.#waiters) {
          if (snapshot[w.coreId] >= w.sequence && changes >= w.gapChange) w.resolve();
          else left.push(w);
        }
        this.#waiters = left;
      }
    } catch (e) {
      for (const w of this.#waiters.splice(0)) w.reject(e);
    } finally {
      this.#writing = false;
    }
  }
}

/**
 * Raises core `coreId`'s mark of `marks` to `uptoSequence` although those entries were not
 * shipped (the opt-in mode of the unshipped limit): the next checkpoint may retire their
 * segments, and they never reach the central stream. The range is recorded as a pending gap in
 * the same durable write ({@linkcode ShipMarks.declareGap}): `shipToNats` with this shipper's
 * name declares it in the stream, also after a restart. Emits a loud `unshippedDropped` event
 * (`ShipMarksOptions.onEvent`) once the mark is durable. Returns the range given up, or
 * undefined when `uptoSequence` was shipped already (no event).
 *
 * @example
 * ```ts
 * import { dropUnshipped, ShipMarks } from "@percore/wal";
 *
 * await using marks = ShipMarks.open("./data/wal", "nats", { onEvent: (e) => console.error(e) });
 * const dropped = await dropUnshipped(marks, 0, 1000);
 * if (dropped) console.error(`core 0: ${dropped.fromSequence}..${dropped.toSequence} dropped`);
 * ```
 */
export async function dropUnshipped(
  marks: ShipMarks,
  coreId: number,
  uptoSequence: number,
): Promise<{ fromSequence: number; toSequence: number } | undefined> {
  if (!(marks instanceof ShipMarks)) throw new TypeError("dropUnshipped() takes a ShipMarks");
  const from = marks.shipped(coreId) + 1;
  if (uptoSequence < from) {
    await marks.advance(coreId, uptoSequence);
    return undefined;
  }
  await marks.declareGap(coreId, from, uptoSequence);
  const dropped = { fromSequence: from, toSequence: uptoSequence };
  emitEvent(_handlers.get(marks), {
    type: "unshippedDropped",
    coreId,
    shipper: marks.name,
    ...dropped,
  });
  return dropped;
}

/** Throws `TypeError` unless `name` is a shipper name (letters, digits, `-`, `_`; 1 to 64). */
export function checkShipperName(name: string): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(
      `shipper name must be 1 to 64 letters, digits, "-" or "_" (not first), got ` +
        JSON.stringify(name),
    );
  }
}

/** The marks file of shipper `name` of the WAL in `walDir`. */
export function marksPath(walDir: string, name: string): string {
  return `${walDir}/${SHIPPERS_DIR}/${name}.json`;
}

/**
 * The marks of shipper `name`, or undefined when it is not registered. A file that is not a
 * regular file, is torn, forged, names another shipper or another WAL than `walId` (null: the
 * WAL has no id) comes back with `invalid` saying why. Other I/O errors throw.
 */
export function readShipperMarks(
  walDir: string,
  name: string,
  walId: string | null,
): ShipperMarks | undefined {
  const path = marksPath(walDir, name);
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(path, "Shipper marks file", MAX_MARKS_BYTES);
  } catch (e) {
    if (isMissing(e)) return undefined;
    if (e instanceof PerCoreWalError && (e.code === "Unsafe" || e.code === "Corrupted")) {
      return {
        name,
        shipped: [],
        gaps: [],
        invalid: e.message.replace(/^Shipper marks file "[^"]*" /, ""),
      };
    }
    throw e;
  }
  const decoded = decodeShipperMarks(bytes, name, walId);
  return "invalid" in decoded ? { name, shipped: [], gaps: [], invalid: decoded.invalid } : decoded;
}

/** Every marks file in `<walDir>/shippers`, by name; a missing directory: none. */
export function listShipperMarks(walDir: string, walId: string | null): ShipperMarks[] {
  const shippers = `${walDir}/${SHIPPERS_DIR}`;
  const kind = lstatIfExists(shippers);
  if (kind === undefined) return [];
  if (!kind.isDirectory || kind.isSymlink) {
    // Who is registered cannot be known: one invalid entry holds every segment.
    const invalid = _unsafeShippersDir(shippers).message;
    return [{ name: SHIPPERS_DIR, shipped: [], gaps: [], invalid }];
  }
  const out: ShipperMarks[] = [];
  for (const e of readDirectory(shippers)) {
    const m = MARKS_FILE.exec(e.name);
    if (m === null) continue;
    const marks = readShipperMarks(walDir, m[1], walId);
    if (marks !== undefined) out.push(marks);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The bytes of a marks file: JSON, a newline, the CRC32C of the JSON in hex, a newline. Version 2
 * (with `gaps`, by core), or version 1 when `version` says so (no gaps then: tests of old files).
 */
export function encodeShipperMarks(
  name: string,
  walId: string,
  shipped: readonly number[],
  updatedAt = new Date(),
  gaps: readonly PendingGap[] = [],
  version: 1 | 2 = MARKS_VERSION,
): Uint8Array {
  assert(version === 2 || gaps.length === 0, "a version 1 marks file holds no gaps");
  const sorted = [...gaps].sort((a, b) => a.coreId - b.coreId).map((g) => ({
    coreId: g.coreId,
    fromSequence: g.fromSequence,
    toSequence: g.toSequence,
  }));
  const body = JSON.stringify({
    version,
    walId,
    name,
    shipped,
    ...(version === 2 ? { gaps: sorted } : {}),
    updatedAt: updatedAt.toISOString(),
  });
  const crc = crc32c(new TextEncoder().encode(body)).toString(16).padStart(8, "0");
  return new TextEncoder().encode(`${body}\n${crc}\n`);
}

/** Decodes a marks file of shipper `name` of WAL `walId`, or says why it is not one. */
export function decodeShipperMarks(
  bytes: Uint8Array,
  name: string,
  walId: string | null,
): ShipperMarks | { invalid: string } {
  const text = new TextDecoder().decode(bytes);
  const m = /^([^\n]*)\n([0-9a-f]{8})\n$/.exec(text);
  if (m === null) return { invalid: "is torn (no checksum line)" };
  if (crc32c(new TextEncoder().encode(m[1])) !== parseInt(m[2], 16)) {
    return { invalid: "fails its checksum" };
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(m[1]);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    return { invalid: "does not parse" };
  }
  if (j === null || typeof j !== "object" || (j.version !== 1 && j.version !== 2)) {
    return { invalid: `has an unknown version (${JSON.stringify(j?.version)})` };
  }
  if (j.name !== name) return { invalid: `names shipper ${JSON.stringify(j.name)}` };
  if (typeof j.walId !== "string" || !WAL_ID.test(j.walId)) return { invalid: "has no WAL id" };
  if (j.walId !== walId) {
    return { invalid: `belongs to another WAL (${j.walId}, not ${walId ?? "a WAL without id"})` };
  }
  const shipped = j.shipped;
  if (
    !Array.isArray(shipped) || shipped.length > 1024 ||
    !shipped.every((s) => typeof s === "number" && Number.isSafeInteger(s) && s >= 0)
  ) {
    return { invalid: "has shipped positions that are not sequences" };
  }
  const gaps = j.version === 1 ? [] : _decodeGaps(j.gaps, shipped as number[]);
  if (gaps === undefined) return { invalid: "has gaps that are not ranges below their marks" };
  const updatedAt = typeof j.updatedAt === "string" ? j.updatedAt : undefined;
  return { name, shipped: shipped as number[], gaps, updatedAt };
}

/**
 * A version 2 file's `gaps`: at most one per core, in core order, each a range of sequences
 * from 1 that ends at or below the core's mark; undefined if not.
 */
function _decodeGaps(gaps: unknown, shipped: number[]): PendingGap[] | undefined {
  if (!Array.isArray(gaps) || gaps.length > 1024) return undefined;
  const out: PendingGap[] = [];
  const seq = (v: unknown): v is number =>
    typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  for (const g of gaps) {
    if (g === null || typeof g !== "object" || Object.keys(g).length !== 3) return undefined;
    const { coreId, fromSequence, toSequence } = g as Record<string, unknown>;
    if (typeof coreId !== "number" || !Number.isInteger(coreId) || coreId < 0) return undefined;
    if (coreId <= (out[out.length - 1]?.coreId ?? -1)) return undefined;
    if (!seq(fromSequence) || !seq(toSequence) || fromSequence > toSequence) return undefined;
    if (toSequence > (shipped[coreId] ?? 0)) return undefined;
    out.push({ coreId, fromSequence, toSequence });
  }
  return out;
}

/** Where a `dir` argument points, and the file mode to write with. */
function _where(dir: string | URL | PerCoreWalConfig): { walDir: string; fileMode: number } {
  if (dir instanceof PerCoreWalConfig) {
    return { walDir: dir.baseDir, fileMode: dir.options.fileMode };
  }
  return { walDir: toPath(dir, "dir"), fileMode: 0o600 };
}

/** The WAL's id and core count, from its `wal.json`; the WAL must exist and have an id. */
function _walIdentity(walDir: string): { walId: string; numCores: number } {
  const meta = readWalMeta(walDir);
  if (meta?.walId === undefined) {
    throw new PerCoreWalError(
      "SegmentNotFound",
      `"${walDir}" holds no WAL with an id (no wal.json, or one written before WAL ids): open ` +
        `it with PerCoreWalManager.open first`,
      { segment: walDir },
    );
  }
  return { walId: meta.walId, numCores: meta.numCores };
}

/** `<walDir>/shippers`, created (its entry fsynced) or checked to be a real directory. */
function _ensureShippersDir(walDir: string, fileMode: number): string {
  const shippers = `${walDir}/${SHIPPERS_DIR}`;
  const kind = lstatIfExists(shippers);
  if (kind === undefined) {
    makeDirectory(shippers, { mode: directoryMode(fileMode) });
    syncDirectory(walDir);
  } else if (!kind.isDirectory || kind.isSymlink) {
    throw _unsafeShippersDir(shippers);
  }
  return shippers;
}

function _unsafeShippersDir(path: string): PerCoreWalError {
  return new PerCoreWalError(
    "Unsafe",
    `Shippers directory "${path}" is not a directory (a symbolic link or another file): ` +
      `move it out of the WAL directory`,
    { segment: path },
  );
}

function _padded(shipped: readonly number[], numCores: number): number[] {
  const out = shipped.slice();
  while (out.length < numCores) out.push(0);
  return out;
}

/** Writes a marks file: temporary file (O_EXCL), fsync, rename, fsync of the directory. */
async function _writeMarks(
  walDir: string,
  name: string,
  walId: string,
  shipped: readonly number[],
  gaps: readonly PendingGap[],
  fileMode: number,
): Promise<void> {
  const path = marksPath(walDir, name);
  // A leftover (or a planted link) goes first: the new file is created, never opened through it.
  removeIfExists(`${path}.tmp`);
  const bytes = encodeShipperMarks(name, walId, shipped, new Date(), gaps);
  await writeNewSyncedFileAsync(`${path}.tmp`, bytes, fileMode);
  await renamePathAsync(`${path}.tmp`, path);
  await syncDirectoryAsync(`${walDir}/${SHIPPERS_DIR}`);
}

/** {@linkcode _writeMarks} at open (the registration must be durable before `open` returns). */
function _writeMarksSync(
  walDir: string,
  name: string,
  walId: string,
  shipped: readonly number[],
  gaps: readonly PendingGap[],
  fileMode: number,
): void {
  const path = marksPath(walDir, name);
  removeIfExists(`${path}.tmp`);
  writeNewSyncedFile(
    `${path}.tmp`,
    encodeShipperMarks(name, walId, shipped, new Date(), gaps),
    fileMode,
  );
  renamePath(`${path}.tmp`, path);
  syncDirectory(`${walDir}/${SHIPPERS_DIR}`);
}
