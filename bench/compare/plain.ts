// The baselines of the comparison, written the way a competent user writes them: plain Deno
// (`Deno.FsFile`, the WAL's framing and CRC32C, fdatasync per batch) and `node:sqlite` in WAL mode
// with `synchronous=FULL`, one transaction per batch.
import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  PUT_OVERHEAD_BYTES,
  R_CRC,
  RECORD_HEADER_BYTES,
  recordCrc,
  RecordType,
  saltState,
  writeRecordHeader,
} from "../../src/format.ts";

const salt = saltState(0x9e3779b9);

/** Frames put records exactly as the WAL does (header, key, value, salted CRC32C). */
export class Framer {
  readonly buf: Uint8Array;
  readonly #view: DataView;
  #used = 0;
  #seq = 1;

  constructor(capacityBytes: number) {
    this.buf = new Uint8Array(capacityBytes);
    this.#view = new DataView(this.buf.buffer);
  }

  /** Bytes framed since the last {@linkcode reset}. */
  get used(): number {
    return this.#used;
  }

  /** Appends one framed put; false when it does not fit. */
  put(key: Uint8Array, value: Uint8Array): boolean {
    const len = PUT_OVERHEAD_BYTES + key.length + value.length;
    const pos = this.#used;
    if (pos + len > this.buf.length) return false;
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    writeRecordHeader(this.#view, pos, len, RecordType.put, 0, 0, this.#seq++, us, 0);
    this.#view.setUint16(pos + RECORD_HEADER_BYTES, key.length, true);
    this.buf.set(key, pos + PUT_OVERHEAD_BYTES);
    this.buf.set(value, pos + PUT_OVERHEAD_BYTES + key.length);
    this.#view.setUint32(pos + R_CRC, recordCrc(this.buf, pos, len, salt), true);
    this.#used = pos + len;
    return true;
  }

  reset(): void {
    this.#used = 0;
  }
}

/** An append-only file: `writeSync` + `syncDataSync`, or their async forms. */
export class PlainFile {
  readonly #file: Deno.FsFile;

  constructor(path: string) {
    this.#file = Deno.openSync(path, { create: true, append: true });
  }

  writeAllSync(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += this.#file.writeSync(bytes.subarray(done));
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += await this.#file.write(bytes.subarray(done));
  }

  syncDataSync(): void {
    this.#file.syncDataSync();
  }

  syncData(): Promise<void> {
    return this.#file.syncData();
  }

  close(): void {
    this.#file.close();
  }
}

/**
 * The group commit a competent user writes by hand: appends are framed into a buffer; one
 * `write` + `syncData` at a time takes everything buffered; every waiter of that flush resolves
 * after its `syncData`, and the next flush takes what arrived meanwhile.
 */
export class PlainGroupCommit {
  readonly #file: PlainFile;
  #filling: Framer;
  #spare: Framer;
  #waiters: PromiseWithResolvers<void>[] = [];
  #flushing = false;

  /** `capacityBytes`: room for every record that can wait at once (one per producer). */
  constructor(path: string, capacityBytes: number) {
    this.#file = new PlainFile(path);
    this.#filling = new Framer(capacityBytes);
    this.#spare = new Framer(capacityBytes);
  }

  /** Frames one put into the buffer; resolves once a flush has made it durable. */
  append(key: Uint8Array, value: Uint8Array): Promise<void> {
    if (!this.#filling.put(key, value)) {
      throw new RangeError("PlainGroupCommit: more waiting records than its capacity");
    }
    const waiter = Promise.withResolvers<void>();
    this.#waiters.push(waiter);
    if (!this.#flushing) void this.#flush();
    return waiter.promise;
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#filling.used > 0) {
        const batch = this.#filling;
        const waiters = this.#waiters;
        this.#filling = this.#spare;
        this.#spare = batch;
        this.#waiters = [];
        try {
          await this.#file.writeAll(batch.buf.subarray(0, batch.used));
          await this.#file.syncData();
        } catch (e) {
          for (const w of waiters) w.reject(e);
          continue;
        } finally {
          batch.reset();
        }
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.#flushing = false;
    }
  }

  close(): void {
    this.#file.close();
  }
}

/** `node:sqlite` in WAL mode, `synchronous=FULL`, a rowid table of (key, value) blobs. */
export class SqliteLog {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode=WAL");
    this.#db.exec("PRAGMA synchronous=FULL");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, key BLOB NOT NULL, value BLOB NOT NULL)",
    );
    this.#insert = this.#db.prepare("INSERT INTO log (key, value) VALUES (?, ?)");
    this.#begin = this.#db.prepare("BEGIN");
    this.#commit = this.#db.prepare("COMMIT");
  }

  begin(): void {
    this.#begin.run();
  }

  insert(key: Uint8Array, value: Uint8Array): void {
    this.#insert.run(key, value);
  }

  commit(): void {
    this.#commit.run();
  }

  close(): void {
    this.#db.close();
  }
}
