// W1's ceiling on this machine: the shape of W1 (blocks of 512 framed records, each written and
// fdatasynced, 8 such chains in flight) through a bare io_uring loop that does none of the WAL's
// work: no producer, no Worker, no encoding, no CRC, the same block written each time into a file
// laid out (zero-filled and synced) before the clock starts, as fio's --overwrite=1 does. What it
// reaches is what the disk and the kernel allow W1 here; it is a bound, not a way to log.
import { type AlignedBuffer, allocAligned, cString, freeAligned, libc } from "../../ffi/libc.ts";
import { IORING_FSYNC_DATASYNC, IOSQE_IO_LINK, O, Op } from "../../ffi/layout.ts";
import { Ring } from "../../src/io/ring.ts";

/** Writes `bytes` of zeros to a new file at `path` and makes them durable (untimed setup). */
export function layOutRaw(path: string, bytes: number): void {
  const file = Deno.openSync(path, { create: true, write: true, truncate: true });
  const zeros = new Uint8Array(1 << 20);
  for (let left = bytes; left > 0; left -= zeros.length) {
    file.writeSync(zeros.subarray(0, Math.min(zeros.length, left)));
  }
  file.syncSync();
  file.close();
}

/** A laid-out file opened with O_DIRECT, a ring, and one block of records to write again and again. */
export class RawRing {
  readonly #fd: number;
  readonly #ring: Ring;
  readonly #mem: AlignedBuffer;
  readonly #bytes: number;
  readonly #inFlight: number;

  /** Opens `path` (laid out by {@linkcode layOutRaw}) to write `block`, `inFlight` at a time. */
  constructor(path: string, block: Uint8Array, inFlight: number) {
    this.#bytes = Math.ceil(block.length / 4096) * 4096;
    this.#inFlight = inFlight;
    this.#fd = libc().open(cString(path), O.WRONLY | O.DIRECT, 0);
    if (this.#fd < 0) throw new Error(`open(O_DIRECT) of ${path} failed`);
    this.#ring = Ring.create(4 * inFlight);
    this.#mem = allocAligned(this.#bytes);
    this.#mem.bytes.set(block);
  }

  /** Writes `blocks` blocks one after the other, each linked to an fdatasync; returns seconds. */
  run(blocks: number): number {
    const ring = this.#ring;
    const t0 = performance.now();
    let submitted = 0;
    let done = 0;
    let failed = 0;
    const onCqe = (id: number, res: number) => {
      if (res < 0) failed = res;
      if (id % 2 === 0) done++; // the fdatasync's completion ends a chain
    };
    while (done < blocks) {
      while (submitted - done < this.#inFlight && submitted < blocks) {
        const at = submitted * this.#bytes;
        ring.prep(
          Op.WRITE,
          IOSQE_IO_LINK,
          this.#fd,
          at,
          this.#mem.address,
          this.#bytes,
          0,
          2 * submitted + 1,
        );
        ring.prep(Op.FSYNC, 0, this.#fd, 0, 0n, 0, IORING_FSYNC_DATASYNC, 2 * submitted + 2);
        submitted++;
      }
      ring.waitBlocking();
      ring.reap(onCqe);
      if (failed < 0) throw new Error(`a write or fdatasync failed: errno ${-failed}`);
    }
    return (performance.now() - t0) / 1000;
  }

  /** Closes the ring and the file, and frees the block. */
  close(): void {
    this.#ring.close();
    libc().close(this.#fd);
    freeAligned(this.#mem);
  }
}
