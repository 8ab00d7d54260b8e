/**
 * liburing through `Deno.dlopen`: only symbols that every liburing 2.x exports. The
 * `io_uring_prep_*` helpers and `io_uring_cq_advance` are `static inline` in 2.3, so SQEs and
 * CQEs are read and written through views over the ring memory (`src/io/uring.ts`).
 *
 * @module
 */

import { PerCoreWalError } from "../src/errors.ts";
import { librarySearchPath } from "./paths.ts";

const symbols = {
  // int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *p)
  io_uring_queue_init_params: { parameters: ["u32", "pointer", "pointer"], result: "i32" },
  // void io_uring_queue_exit(struct io_uring *ring)
  io_uring_queue_exit: { parameters: ["pointer"], result: "void" },
  // int io_uring_submit(struct io_uring *ring)
  io_uring_submit: { parameters: ["pointer"], result: "i32" },
  // int io_uring_submit_and_wait(struct io_uring *ring, unsigned wait_nr)
  io_uring_submit_and_wait: { parameters: ["pointer", "u32"], result: "i32" },
  // int io_uring_wait_cqes(struct io_uring *ring, struct io_uring_cqe **cqe_ptr, unsigned wait_nr,
  //                        struct __kernel_timespec *ts, sigset_t *sigmask)
  io_uring_wait_cqes: {
    parameters: ["pointer", "buffer", "u32", "pointer", "pointer"],
    result: "i32",
  },
  // int io_uring_register_eventfd(struct io_uring *ring, int fd)
  io_uring_register_eventfd: { parameters: ["pointer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded liburing symbols. */
export type Liburing = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** Where liburing is looked for, in order, unless `DENO_LIBURING_PATH` names a file. */
const CANDIDATES = librarySearchPath("liburing.so.2");

let lib: Liburing | undefined;

/**
 * Loads liburing on first use. Throws `PerCoreWalError` "Unsupported" saying what is missing
 * and what to do.
 */
export function liburing(): Liburing {
  if (lib !== undefined) return lib;
  if (Deno.build.os !== "linux") {
    throw new PerCoreWalError("Unsupported", `io_uring needs Linux; this is ${Deno.build.os}`);
  }
  let override: string | undefined;
  // Queried first: a get without the permission prompts on a terminal (a core Worker loads
  // liburing as it starts, whatever its backend: src/io/choose.ts preloadNative).
  const env = { name: "env", variable: "DENO_LIBURING_PATH" } as const;
  if (Deno.permissions.querySync(env).state === "granted") {
    override = Deno.env.get("DENO_LIBURING_PATH");
  }
  // Otherwise (no --allow-env): the default locations.
  const tried: string[] = [];
  for (const path of override ? [override] : CANDIDATES) {
    try {
      lib = Deno.dlopen(path, symbols).symbols;
      return lib;
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new PerCoreWalError(
          "Unsupported",
          "Cannot load liburing: FFI is not allowed (run Deno with --allow-ffi)",
          { cause: e },
        );
      }
      tried.push(path);
    }
  }
  throw new PerCoreWalError(
    "Unsupported",
    `Cannot load liburing (tried ${tried.join(", ")}): install liburing 2.x ` +
      `(Debian/Ubuntu: apt-get install liburing2) or set DENO_LIBURING_PATH to liburing.so.2`,
  );
}
