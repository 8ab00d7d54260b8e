/**
 * `wal`: the command-line tool of `@percore/wal`, to look into, check and repair a WAL
 * directory.
 *
 * ```
 * wal inspect <dir>                 segments per core: headers, counts, ranges, sizes, damage
 * wal dump <segment|dir>            entries (merged across cores for a directory)
 * wal verify <dir>                  validates everything; exit 1 naming file and offset
 * wal repair <dir> --mode <mode>    what recovery would do, then does it (under the lock)
 * wal checkpoints <dir>             checkpoints, valid or not, and the one recovery uses
 * wal stats <dir>                   totals per core and for the directory
 * wal tail <dir> [--follow]         the last entries, then new ones as they are written
 * ```
 *
 * Exit codes: 0 ok, 1 damage found or the operation failed, 2 usage error. `--json` prints one
 * JSON object per line (timestamps in nanoseconds as strings); keys and values print as UTF-8 when they are, else
 * as `0x` hex. Every command has `--help`. Read-only commands take no lock and work on a
 * directory in use; `repair` is refused while a manager holds the directory.
 *
 * @example Run it
 * ```sh
 * deno run --allow-read --allow-write jsr:@percore/wal/cli verify ./data/wal
 * deno task wal dump ./data/wal --epoch 3 --json | jq .key
 * ```
 *
 * @example Call it from a program
 * ```ts ignore
 * import { main } from "@percore/wal/cli";
 *
 * const code = await main(["verify", "./data/wal"]);
 * console.log(code === 0 ? "intact" : "damaged");
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PerCoreWalError } from "./src/errors.ts";
import { configFromDirectory, readWalMeta } from "./src/wal_meta.ts";
import { scanCheckpoints, scanWalCheckpoints } from "./src/cli/scan.ts";
import { dump } from "./src/cli/dump.ts";
import { repair, REPAIR_MODES, type RepairMode } from "./src/cli/repair.ts";
import { checkpoints, inspect, stats, verify } from "./src/cli/report.ts";
import { printShippers } from "./src/cli/shippers.ts";
import { tail } from "./src/cli/tail.ts";
import { UsageError as _UsageError } from "./src/cli/usage.ts";

type _Option = { type: "boolean" | "string"; short?: string };

interface _Command {
  usage: string;
  about: string;
  options: Record<string, _Option>;
  help: string;
}

const _JSON = "  --json                 one JSON object per line (timestampNs as a string)\n";
const _SHIPPERS =
  "Then one line per registered shipper (shippers/<name>.json): per core the last\n" +
  "shipped sequence and the segments it holds from retirement.\n";
const _CKPT = "  --checkpoint-dir DIR   checkpoints (default: `checkpoints` inside <dir>)\n";
const _HELP = "  -h, --help             this help\n";
const _SHIP_OPTIONS: Record<string, _Option> = {
  server: { type: "string" },
  stream: { type: "string" },
  node: { type: "string" },
  subject: { type: "string" },
  json: { type: "boolean" },
};
const _SHIP_HELP = "  --server URL           the NATS server (several: comma-separated)\n" +
  "  --stream NAME          the JetStream stream (created if absent by `ship`)\n" +
  "  --node ID              this node's stable id (letters, digits, _ and -)\n" +
  "  --subject S            the subject prefix (default wal): subjects are S.<node>.<core>\n";

const COMMANDS: Record<string, _Command> = {
  inspect: {
    usage: "wal inspect <dir> [--json] [--checkpoint-dir DIR]",
    about: "segments per core: headers, entry counts, sequence and epoch ranges, sizes, damage",
    options: { json: { type: "boolean" }, "checkpoint-dir": { type: "string" } },
    help: _JSON + _CKPT + _HELP +
      "Reads every segment (no lock: works on a directory in use; a batch being written can " +
      "look\ntorn there). Exit 1 when damage is found.\n",
  },
  dump: {
    usage: "wal dump <segment|dir> [--from-seq N] [--epoch E] [--core C] [--json]",
    about: "entries of a segment, or of a directory merged across cores",
    options: {
      json: { type: "boolean" },
      "from-seq": { type: "string" },
      epoch: { type: "string" },
      core: { type: "string" },
    },
    help: "  --from-seq N           only entries with sequence >= N (sequences are per core)\n" +
      "  --epoch E              only entries of epoch E\n" +
      "  --core C               only entries of core C\n" + _JSON + _HELP +
      "A directory is merged by (epoch, timestampNs, coreId, sequence). A torn tail ends a\n" +
      "core; corruption stops with exit 1 and a message naming the segment and the offset.\n" +
      "Keys and values print as UTF-8 when they are valid UTF-8, else as 0x hex.\n",
  },
  verify: {
    usage: "wal verify <dir> [--strict] [--json] [--checkpoint-dir DIR]",
    about: "validate every segment and checkpoint; exit 1 on damage",
    options: {
      json: { type: "boolean" },
      strict: { type: "boolean" },
      "checkpoint-dir": { type: "string" },
    },
    help: "  --strict               a torn tail (a crash's cut-short last write) is damage too\n" +
      _JSON + _CKPT + _HELP +
      "Checks segment headers, every record's CRC32C, sequences and epochs, the continuity\n" +
      "of sequences between segments, and every checkpoint's manifest and file checksums.\n" +
      "Each problem goes to stderr as `<file>: <code> at offset <n>: <what>`. Exit 0 when\n" +
      "intact, 1 on damage. Takes no lock.\n",
  },
  repair: {
    usage: "wal repair <dir> --mode tolerateTornTail|pointInTime|salvage [--dry-run] [--json]",
    about: "show what recovery would do to the files, then do it",
    options: {
      mode: { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      "checkpoint-dir": { type: "string" },
    },
    help:
      "  --mode M               tolerateTornTail (default): cut torn tails, refuse corruption\n" +
      "                         pointInTime: cut every core before the epoch of the first\n" +
      "                           damage; later segments are renamed *.damaged-<time>\n" +
      "                         salvage: report what survives; files cannot be repaired\n" +
      "                           in place this way (exit 1 unless --dry-run)\n" +
      "  --dry-run              show the plan only; change nothing, take no lock\n" +
      _JSON + _CKPT + _HELP +
      "Takes the directory's lock (wal.lock): refused, exit 1, while a manager holds it.\n" +
      "Every change is fsynced. Damage that verify reports and the mode does not act on (such\n" +
      "as damage before a checkpoint's position) is listed as `not repaired` with the reason,\n" +
      "and the exit is 1.\n",
  },
  checkpoints: {
    usage: "wal checkpoints <dir> [--json] [--checkpoint-dir DIR]",
    about: "the checkpoints, valid or not, and the one recovery would use",
    options: { json: { type: "boolean" }, "checkpoint-dir": { type: "string" } },
    help: _JSON + _CKPT + _HELP + "Exit 1 when a checkpoint is invalid.\n" + _SHIPPERS,
  },
  stats: {
    usage: "wal stats <dir> [--json] [--checkpoint-dir DIR]",
    about: "totals per core and for the directory: entries by type, bytes, epochs",
    options: { json: { type: "boolean" }, "checkpoint-dir": { type: "string" } },
    help: _JSON + _CKPT + _HELP + _SHIPPERS,
  },
  tail: {
    usage: "wal tail <dir> [--follow] [-n N] [--interval-ms MS] [--json]",
    about: "the last entries of every core, then new ones as they are written",
    options: {
      follow: { type: "boolean", short: "f" },
      lines: { type: "string", short: "n" },
      "interval-ms": { type: "string" },
      json: { type: "boolean" },
    },
    help: "  -f, --follow           keep printing new entries (until SIGINT/SIGTERM)\n" +
      "  -n, --lines N          entries of each core to print first (default 10)\n" +
      "  --interval-ms MS       how often to look for new entries (default 200)\n" +
      _JSON + _HELP +
      "Follows by polling the segment files, across segment rotation; takes no lock.\n" +
      "Durable only: the manager tells which records are durable only in its own memory, so\n" +
      "tail reads and validates new records (whole, CRC and sequence checked), fdatasyncs their\n" +
      "segment itself, and prints them after that returned (one extra fdatasync per poll that\n" +
      "found records). It never prints a torn or damaged record; it waits at anything that does\n" +
      "not validate yet (a batch being written) instead of skipping it.\n",
  },
  ship: {
    usage: "wal ship <dir> --server URL --stream NAME --node ID [--subject S] [--once] " +
      "[--max-unshipped-bytes N --drop-oldest] [--json]",
    about: "ship the WAL's durable entries to NATS JetStream, exactly once, in order per core",
    options: {
      ..._SHIP_OPTIONS,
      once: { type: "boolean" },
      "max-unshipped-bytes": { type: "string" },
      "drop-oldest": { type: "boolean" },
    },
    help: _SHIP_HELP +
      "  --once                 ship what is durable now, wait for the acknowledgements, exit 0\n" +
      "  --max-unshipped-bytes N  per core, bytes of the WAL not yet acknowledged above which,\n" +
      "                         with --drop-oldest (required: another process's appends cannot\n" +
      "                         be held from here), the oldest sealed unshipped segments are\n" +
      "                         given up, each drop on stderr and declared in the stream\n" +
      _JSON + _HELP +
      "Resumes after what the stream last holds for each core (docs/SHIPPING.md). Without\n" +
      "--once, ships new durable entries until SIGINT/SIGTERM, then closes cleanly; exit 1 when a\n" +
      "core fails (such as a corrupted last message in the stream). Prints each core's status at\n" +
      "the end. Takes no lock: the WAL may be written by another process meanwhile.\n",
  },
  "ship-status": {
    usage: "wal ship-status <dir> --server URL --stream NAME --node ID [--subject S] [--json]",
    about: "per core: what the stream holds last, what the WAL holds, the lag in records",
    options: _SHIP_OPTIONS,
    help: _SHIP_HELP + _JSON + _HELP +
      "Reads the last message of each core's subject and the newest segment of each core;\n" +
      "changes nothing. The lag is the WAL's last sequence less the stream's.\n",
  },
};

/** The help of the tool, or of one command. */
function _help(command?: string): string {
  const c = command === undefined ? undefined : COMMANDS[command];
  if (c !== undefined) return `Usage: ${c.usage}\n\n${c.about}\n\n${c.help}`;
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return "Usage: wal <command> [options]\n\nCommands:\n" +
    Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.about}`).join("\n") +
    "\n\nRun `wal <command> --help` for a command's options.\n" +
    "Exit codes: 0 ok, 1 damage found or operation failed, 2 usage error.\n" +
    "Permissions: --allow-read, and --allow-write for repair; --allow-net and --allow-env\n" +
    "for ship and ship-status.\n";
}

function _integer(name: string, text: string | undefined, min = 0): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new _UsageError(
      `--${name} must be an integer >= ${min} and at most 2^53 - 1, got "${text}"`,
    );
  }
  return Number(text);
}

/**
 * Runs the tool with command-line arguments; prints to stdout and stderr. Resolves to the
 * exit code: 0 ok, 1 damage found or the operation failed, 2 usage error.
 *
 * @example
 * ```ts ignore
 * import { main } from "@percore/wal/cli";
 *
 * Deno.exit(await main(["inspect", "./data/wal", "--json"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    const text = _help(name === "help" ? rest[0] : undefined);
    if (name === undefined) console.error(text);
    else console.log(text);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`wal: unknown command "${name}"\n\n${_help()}`);
    return 2;
  }
  try {
    return await _run(name, command, rest);
  } catch (e) {
    return _failure(name, command, e);
  }
}

/** Parses the arguments of command `name` and runs it; throws what the command throws. */
async function _run(name: string, command: _Command, rest: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new _UsageError(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(_help(name));
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    throw new _UsageError(
      parsed.positionals.length === 0
        ? `missing <${name === "dump" ? "segment|dir" : "dir"}>`
        : `unexpected argument "${parsed.positionals[1]}"`,
    );
  }
  const path = parsed.positionals[0].replace(/(.)\/+$/, "$1");
  const json = v.json === true;
  const checkpointDir = v["checkpoint-dir"] as string | undefined;
  const mode = (v.mode as string | undefined) ?? "tolerateTornTail";
  if (name === "repair" && !(REPAIR_MODES as readonly string[]).includes(mode)) {
    throw new _UsageError(`--mode must be ${REPAIR_MODES.join(", ")}; got "${mode}"`);
  }
  const lines = _integer("lines", v.lines as string | undefined) ?? 10;
  const intervalMs = _integer("interval-ms", v["interval-ms"] as string | undefined, 10) ?? 200;
  const fromSequence = _integer("from-seq", v["from-seq"] as string | undefined);
  const epoch = _integer("epoch", v.epoch as string | undefined);
  const core = _integer("core", v.core as string | undefined);
  const o = { json, checkpointDir, strict: v.strict === true };
  if (name === "ship" || name === "ship-status") return await _ship(name, path, v);
  switch (name) {
    case "dump":
      return await dump(path, {
        json,
        fromSequence,
        epoch,
        core,
      });
    case "checkpoints": // Without --checkpoint-dir, <dir> must be a WAL directory: its checkpoints as recovery
    // finds them (FORMAT.md section 11); with it, those of the WAL <dir> (by its wal.json).
    {
      const code = checkpoints(
        checkpointDir === undefined ? await scanWalCheckpoints(configFromDirectory(path)) : {
          checkpointDir,
          checkpoints: scanCheckpoints(checkpointDir, readWalMeta(path)?.walId),
        },
        o,
      );
      // What the WAL's shippers hold from retirement, when <dir> is a WAL.
      if (readWalMeta(path) !== undefined) printShippers(configFromDirectory(path), o);
      return code;
    }
  }
  const config = configFromDirectory(path);
  switch (name) {
    case "inspect":
      return await inspect(config, o);
    case "verify":
      return await verify(config, o);
    case "stats": {
      const code = await stats(config, o);
      printShippers(config, o);
      return code;
    }
    case "repair":
      return await repair(config, {
        mode: mode as RepairMode,
        dryRun: v["dry-run"] === true,
        json,
        checkpointDir,
      });
    default:
      return await _tail(config, json, lines, intervalMs, v.follow === true);
  }
}

/** `wal ship` and `wal ship-status`: loads the NATS client only now (a dynamic import). */
async function _ship(
  name: "ship" | "ship-status",
  path: string,
  v: Record<string, string | boolean | undefined>,
): Promise<number> {
  for (const k of ["server", "stream", "node"]) {
    if (typeof v[k] !== "string" || v[k] === "") throw new _UsageError(`missing --${k}`);
  }
  const o = {
    server: v.server as string,
    stream: v.stream as string,
    node: v.node as string,
    subject: v.subject as string | undefined,
    json: v.json === true,
  };
  const maxUnshippedBytes = _integer(
    "max-unshipped-bytes",
    v["max-unshipped-bytes"] as string | undefined,
    1,
  );
  if ((maxUnshippedBytes !== undefined) !== (v["drop-oldest"] === true)) {
    throw new _UsageError(
      "--max-unshipped-bytes and --drop-oldest go together: `wal ship` cannot hold another " +
        "process's appends, so past the limit it can only give up the oldest unshipped segments",
    );
  }
  const ship = await import("./src/cli/ship.ts");
  try {
    if (name === "ship-status") return await ship.shipStatus(path, o);
    const stop = new AbortController();
    const abort = () => stop.abort();
    const signals = v.once === true ? [] : (["SIGINT", "SIGTERM"] as const);
    for (const s of signals) Deno.addSignalListener(s, abort);
    try {
      return await ship.shipDirectory(path, {
        ...o,
        maxUnshippedBytes,
        once: v.once === true,
        signal: stop.signal,
      });
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, abort);
    }
  } catch (e) {
    // A bad node or stream name (TypeError), an unreachable server, a refusal of the server.
    if (e instanceof PerCoreWalError || !(e instanceof Error)) throw e;
    console.error(`wal ${name}: ${e.message}`);
    return 1;
  }
}

/** The exit code for what a command threw, after saying why; rethrows what is not expected. */
function _failure(name: string, command: _Command, e: unknown): number {
  if (e instanceof _UsageError) {
    console.error(`wal ${name}: ${e.message}\nUsage: ${command.usage} (--help for more)`);
    return 2;
  }
  // `wal dump ... | head`: the reader is gone, which is not a failure.
  if (e instanceof Deno.errors.BrokenPipe) return 0;
  if (e instanceof PerCoreWalError || e instanceof Deno.errors.PermissionDenied) {
    const where = e instanceof PerCoreWalError && e.segment !== undefined &&
        !e.message.includes(e.segment)
      ? ` (${e.segment}${e.offset === undefined ? "" : ` at offset ${e.offset}`})`
      : "";
    console.error(`wal ${name}: ${e.message}${where}`);
    return 1;
  }
  throw e;
}

async function _tail(
  config: ReturnType<typeof configFromDirectory>,
  json: boolean,
  lines: number,
  intervalMs: number,
  follow: boolean,
): Promise<number> {
  const stop = new AbortController();
  const abort = () => stop.abort();
  const signals = follow ? (["SIGINT", "SIGTERM"] as const) : [];
  for (const s of signals) Deno.addSignalListener(s, abort);
  try {
    return await tail(config, { json, lines, follow, intervalMs, signal: stop.signal });
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, abort);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
