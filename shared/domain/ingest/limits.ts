/**
 * The limits of API.md §2 and the structural checks that keep hostile input
 * away from the store: nesting depth, prototype-pollution keys, and values
 * DynamoDB (or its SDK's marshaller) would refuse with a fault instead of a
 * clear 4xx. Everything here is iterative: a 100,000-level document cannot
 * overflow the stack.
 */
import * as z from 'zod/mini';

export const MAX_MESSAGES_PER_BATCH = 500;
export const MAX_BODY_BYTES = 500 * 1024;
export const MAX_MESSAGE_BYTES = 32 * 1024;
/** Levels of objects/arrays below the message itself (`properties` is level 1). */
export const MAX_NESTING = 10;
export const MAX_MESSAGE_ID_LENGTH = 100;
export const MAX_ID_LENGTH = 256;
export const MAX_EVENT_NAME_LENGTH = 200;
export const MAX_NAME_LENGTH = 1000;
/** A corrected timestamp further ahead of receipt than this is refused. */
export const MAX_FUTURE_MS = 60 * 60 * 1000;

/**
 * Keys that can rewrite an object's prototype when the document is later
 * merged or assigned by careless code (ours or a downstream consumer's).
 */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The key that replaces an object's prototype when a copy assigns it: the
 * one of FORBIDDEN_KEYS that no stored profile holds (profile/counters.ts
 * `isSafeKey`), while an event named `constructor` is a profile's event
 * count of that name.
 */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__']);

// DynamoDB numbers: 38 significant digits, magnitude 1e-130 .. 9.99e125. The SDK
// marshaller additionally refuses JS numbers outside the safe-integer range (and
// the unmarshaller would turn them into BigInt), so that range is the real one.
const MIN_MAGNITUDE = 1e-130;

/** Unicode's control characters (general category Cc): C0, DEL and C1 (U+0080–U+009F: NEL breaks a line, CSI starts a terminal escape). */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Characters that show nothing or reorder the text around them: the soft
 * hyphen, zero-width spaces and joiners, invisible operators, the byte-order
 * mark, bidirectional marks, embeddings, overrides and isolates, and the line
 * and paragraph separators. An id holding one reads as another id in an
 * operator's console, a log line or an export (`u-42` + U+200B shows as
 * `u-42`; U+202E shows what follows it backwards).
 */
const INVISIBLE_OR_BIDI_CHARACTERS = /[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function hasControlCharacters(value: string): boolean {
  return CONTROL_CHARACTERS.test(value);
}

/** Whether the text holds a character that shows nothing or reorders the text around it (INVISIBLE_OR_BIDI_CHARACTERS). */
export function hasInvisibleOrBidiCharacters(value: string): boolean {
  return INVISIBLE_OR_BIDI_CHARACTERS.test(value);
}

/** A string that is not valid Unicode (a lone UTF-16 surrogate) cannot be stored as UTF-8. */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

export const NO_CONTROL_CHARACTERS = 'must not contain control characters';
export const NOT_UNICODE = 'must be valid Unicode (lone surrogate)';
export const NO_INVISIBLE_CHARACTERS = 'must not contain invisible or bidirectional formatting characters (zero-width, direction marks or overrides, line separators)';

/** One check of a string: what it must satisfy, and the message when it does not. */
export interface TextCheck {
  readonly ok: (value: string) => boolean;
  readonly message: string;
  /** The bound `ok` holds, when it is a length in UTF-16 units (so that a schema can publish it). */
  readonly maxLength?: number;
  /**
   * Held by ids coming in (events, decide) only: an operator may still name
   * an id stored before the check existed (to read, export, erase or
   * simulate that customer). `idTextProblem(value, 'stored')` and
   * `idTextZodChecks('stored')` skip it.
   */
  readonly incomingOnly?: boolean;
}

/**
 * What the text of every customer id must be — `userId`, `anonymousId`,
 * `previousId` and `groupId` on events, `userId` and `anonymousId` on decide
 * and simulate — in the order checked, each bound with its own message. The
 * one definition: ingest's message schema, decide's schema and decide's
 * hand-written parser all read this list (an empty id is each route's own
 * rule: absent on events, refused on decide).
 */
export const ID_TEXT_CHECKS: readonly TextCheck[] = [
  { ok: (value) => value.length <= MAX_ID_LENGTH, message: `must be at most ${MAX_ID_LENGTH} characters`, maxLength: MAX_ID_LENGTH },
  { ok: (value) => !hasControlCharacters(value), message: NO_CONTROL_CHARACTERS },
  { ok: (value) => !hasLoneSurrogate(value), message: NOT_UNICODE },
  // "   " names nobody: a tracker's bug (a padded or unset field), not a customer.
  { ok: (value) => value.length === 0 || value.trim().length > 0, message: 'must not be blank (only whitespace)' },
  { ok: (value) => !hasInvisibleOrBidiCharacters(value), message: NO_INVISIBLE_CHARACTERS, incomingOnly: true },
];

/**
 * ID_TEXT_CHECKS as zod (mini) checks of a string schema, in order (a length
 * bound as `maxLength`, which JSON Schema shows); for a `stored` id (one an
 * operator names) without the `incomingOnly` ones.
 */
export const idTextZodChecks = (id: 'incoming' | 'stored' = 'incoming') =>
  ID_TEXT_CHECKS.filter((check) => id === 'incoming' || check.incomingOnly !== true).map((check) =>
    check.maxLength === undefined ? z.refine<string>(check.ok, check.message) : z.maxLength(check.maxLength, check.message),
  );

/**
 * The message of the first of ID_TEXT_CHECKS that `value` fails, or
 * undefined. `stored`: an id an operator names, which may have been stored
 * before a check marked `incomingOnly` existed; those checks are skipped.
 */
export function idTextProblem(value: string, id: 'incoming' | 'stored' = 'incoming'): string | undefined {
  for (const check of ID_TEXT_CHECKS) if ((id === 'incoming' || check.incomingOnly !== true) && !check.ok(value)) return check.message;
  return undefined;
}

export function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

export interface StructureProblem {
  /** Path below the inspected value, as zod-style parts. */
  readonly path: PropertyKey[];
  readonly message: string;
}

interface Frame {
  readonly value: unknown;
  readonly depth: number;
  readonly parent: Frame | undefined;
  readonly key: PropertyKey | undefined;
}

function pathOf(frame: Frame): PropertyKey[] {
  const parts: PropertyKey[] = [];
  for (let f: Frame | undefined = frame; f?.key !== undefined; f = f.parent) parts.push(f.key);
  return parts.reverse();
}

function describeKey(key: string): string {
  return key.length > 40 ? `${JSON.stringify(key.slice(0, 40))}…` : JSON.stringify(key);
}

/**
 * Walk a parsed JSON value (no recursion) and return the first structural
 * problem: nesting deeper than `maxNesting`, a key of `forbiddenKeys` (the
 * prototype-pollution keys unless told), an empty or non-Unicode key, a non-Unicode string, or a number the store cannot
 * hold exactly. The root is level 0. Stops at the first problem.
 */
export function inspectStructure(
  root: unknown,
  maxNesting = MAX_NESTING,
  forbiddenKeys: ReadonlySet<string> = FORBIDDEN_KEYS,
): StructureProblem | undefined {
  const stack: Frame[] = [{ value: root, depth: 0, parent: undefined, key: undefined }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    const { value, depth } = frame;
    if (typeof value === 'string') {
      if (hasLoneSurrogate(value)) return { path: pathOf(frame), message: NOT_UNICODE };
      continue;
    }
    if (typeof value === 'number') {
      const magnitude = Math.abs(value);
      if (!Number.isFinite(value) || magnitude > Number.MAX_SAFE_INTEGER || (magnitude !== 0 && magnitude < MIN_MAGNITUDE)) {
        return { path: pathOf(frame), message: `number out of the supported range (±${Number.MAX_SAFE_INTEGER})` };
      }
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > maxNesting) {
      return { path: pathOf(frame), message: `nesting deeper than ${maxNesting} levels` };
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth: depth + 1, parent: frame, key: i });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      if (forbiddenKeys.has(key)) return { path: [...pathOf(frame), key], message: `forbidden key ${describeKey(key)}` };
      if (key.length === 0) return { path: pathOf(frame), message: 'empty keys are not allowed' };
      if (hasLoneSurrogate(key)) return { path: pathOf(frame), message: 'keys must be valid Unicode (lone surrogate)' };
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: frame, key });
    }
  }
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
