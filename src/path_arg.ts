/**
 * The one conversion of a path argument (`string` or `file:` `URL`) to the path string the rest
 * of the module works with.
 *
 * @module
 */

/**
 * `path` as a file-system path: a string unchanged, a `file:` URL decoded to its path. Throws
 * `TypeError` for another URL scheme, a URL with a host, or a value that is neither.
 */
export function toPath(path: string | URL, name = "path"): string {
  if (typeof path === "string") {
    // A URL written as a string is a URL, not a relative directory named "file:".
    return /^file:/i.test(path) ? toPath(_parse(path, name), name) : path;
  }
  if (!(path instanceof URL)) {
    throw new TypeError(`${name} must be a string or a file: URL, got ${_kind(path)}`);
  }
  if (path.protocol !== "file:") {
    throw new TypeError(`${name} must be a file: URL, got a ${path.protocol} URL (${path.href})`);
  }
  if (path.hostname !== "" && path.hostname !== "localhost") {
    throw new TypeError(`${name} must be a local file: URL, got host "${path.hostname}"`);
  }
  // %2F would decode to a separator that is not one in the URL: refused, like Deno's own.
  if (/%2f/i.test(path.pathname)) {
    throw new TypeError(`${name} must not encode "/" as %2F: ${path.href}`);
  }
  const decoded = decodeURIComponent(path.pathname.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"));
  if (decoded.includes("\0")) throw new TypeError(`${name} must not contain a NUL byte`);
  return decoded;
}

function _parse(text: string, name: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new TypeError(`${name} "${text}" starts like a file: URL but is not one`);
  }
}

function _kind(v: unknown): string {
  return v === null ? "null" : typeof v === "object" ? v.constructor?.name ?? "object" : typeof v;
}
