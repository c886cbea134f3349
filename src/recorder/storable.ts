/**
 * What PostgreSQL can store, checked before a call is queued: a value that
 * passes here is never refused for its encoding by slonik or the database,
 * so one call cannot fail the batch it travels in.
 */

/** A JSON value as jsonb stores it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** How deep metadata may nest (the top-level object is level 1): far beyond real metadata, far below any stack limit. */
export const METADATA_MAX_DEPTH = 100;
/** The most metadata a call may carry, as UTF-8 JSON. */
export const METADATA_MAX_BYTES = 65_536;

// With the u flag a surrogate pair is one code point, so this matches only a half without its partner.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Why PostgreSQL cannot store this string in text or jsonb, or undefined when it can. */
export function unstorableText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains U+0000 (NUL), which PostgreSQL cannot store in text or jsonb';
  if (LONE_SURROGATE.test(value)) return 'contains a lone surrogate (half of a UTF-16 pair), which is not valid Unicode';
  return undefined;
}

/** Where in the metadata a problem is, relative to metadata itself. */
export type JsonPath = Array<string | number>;

/** What the metadata walk found: a copy safe to send, or the first problem and where it is. */
export type StorableJson = { ok: true; value: JsonObject } | { ok: false; path: JsonPath; problem: string };

class Unstorable {
  constructor(readonly path: JsonPath, readonly problem: string) {}
}

/**
 * Copies metadata into plain JSON that jsonb accepts, or names the first
 * value that cannot be sent: a U+0000 or lone surrogate in a key or string,
 * NaN or Infinity, a BigInt, undefined, a function, a cycle, nesting deeper
 * than METADATA_MAX_DEPTH, an object that is not plain (a Date, a Map, a
 * class), more than METADATA_MAX_BYTES, or a property whose getter throws.
 * Every property is read once, here, so what is queued cannot change or
 * throw later; toJSON is never called. Keys are copied as data, `__proto__`
 * included, and symbol keys are left out, as JSON.stringify leaves them.
 */
export function toStorableJson(metadata: unknown): StorableJson {
  const budget = { bytes: 0 };
  try {
    const kind = read([], () => describeKind(metadata));
    if (kind !== 'a plain object') return { ok: false, path: [], problem: `must be a plain JSON object, not ${kind}` };
    const value = copy(metadata, [], [], budget) as JsonObject;
    if (Buffer.byteLength(JSON.stringify(value)) > METADATA_MAX_BYTES) throw new Unstorable([], tooBig());
    return { ok: true, value };
  } catch (error) {
    if (error instanceof Unstorable) return { ok: false, path: error.path, problem: error.problem };
    return { ok: false, path: [], problem: `could not be read: ${describeThrown(error)}` };
  }
}

function tooBig(): string {
  return `must be at most ${METADATA_MAX_BYTES / 1024} kB as JSON`;
}

/**
 * The copy of one value. `path` leads to it and `ancestors` are the objects
 * above it, both kept as stacks (a cycle is an object that is its own
 * ancestor; an object referenced twice side by side is not one). `budget`
 * adds up a lower bound of the JSON size so that a huge value is refused
 * before all of it is copied. The depth limit keeps the recursion far from
 * the stack's end.
 */
function copy(value: unknown, path: JsonPath, ancestors: object[], budget: { bytes: number }): JsonValue {
  budget.bytes += typeof value === 'string' ? value.length + 2 : 1;
  if (budget.bytes > METADATA_MAX_BYTES) throw new Unstorable([], tooBig());
  switch (typeof value) {
    case 'string': {
      const problem = unstorableText(value);
      if (problem) throw new Unstorable([...path], problem);
      return value;
    }
    case 'number':
      if (!Number.isFinite(value)) throw new Unstorable([...path], `is ${value}, which JSON cannot hold`);
      return value;
    case 'boolean':
      return value;
    case 'bigint':
      throw new Unstorable([...path], 'is a BigInt, which JSON cannot hold: pass a number or a decimal string');
    case 'object':
      if (value === null) return null;
      break;
    default:
      throw new Unstorable([...path], `is ${describeKind(value)}, which JSON cannot hold`);
  }
  if (ancestors.includes(value)) throw new Unstorable([...path], 'is cyclic: it contains itself');
  if (ancestors.length >= METADATA_MAX_DEPTH) throw new Unstorable([], `nests deeper than ${METADATA_MAX_DEPTH} levels`);
  const kind = read(path, () => describeKind(value));
  if (kind !== 'a plain object' && kind !== 'an array') throw new Unstorable([...path], `is ${kind}, not a plain object or array`);
  ancestors.push(value);
  try {
    if (kind === 'an array') {
      const array = value as unknown[];
      const length = read(path, () => array.length);
      const result: JsonValue[] = [];
      for (let index = 0; index < length; index += 1) {
        path.push(index);
        result.push(copy(read(path, () => array[index], 'reading it threw'), path, ancestors, budget));
        path.pop();
      }
      return result;
    }
    const object = value as Record<string, unknown>;
    const result: JsonObject = {};
    for (const key of read(path, () => Object.keys(object))) {
      const problem = unstorableText(key);
      if (problem) throw new Unstorable([...path], `the key ${JSON.stringify(key)} ${problem}`);
      budget.bytes += key.length + 3;
      path.push(key);
      const child = copy(read(path, () => object[key], 'reading it threw'), path, ancestors, budget);
      path.pop();
      // A "__proto__" key is data: assigning it would set the copy's prototype instead.
      if (key === '__proto__') Object.defineProperty(result, key, { value: child, enumerable: true, writable: true, configurable: true });
      else result[key] = child;
    }
    return result;
  } finally {
    ancestors.pop();
  }
}

/** Runs a read that user code may intercept (a getter, a Proxy), naming where it threw. */
function read<T>(path: JsonPath, reading: () => T, what = 'could not be read:'): T {
  try {
    return reading();
  } catch (error) {
    throw new Unstorable([...path], `${what} ${describeThrown(error)}`);
  }
}

/** "a plain object", "an array", "null", "a Date", "undefined", "a function", ... for messages. */
function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value !== 'object') return `a ${typeof value}`;
  if (Array.isArray(value)) return 'an array';
  const prototype = Object.getPrototypeOf(value) as object | null;
  // Object.prototype of this realm or of another one (a vm context, an iframe).
  if (prototype === null || Object.getPrototypeOf(prototype) === null) return 'a plain object';
  const name = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object of a class';
}

/** An exception as one short line, whatever was thrown. */
export function describeThrown(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    text = 'something that cannot be printed';
  }
  return oneLine(text);
}

/** Control characters (a newline, a NUL) become spaces, and a very long text is cut, so a message stays one line. */
export function oneLine(text: string, maxLength = 300): string {
  const flat = text.replaceAll(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > maxLength ? `${flat.slice(0, maxLength)}...` : flat;
}
