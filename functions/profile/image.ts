/**
 * A stream record's NEW_IMAGE (DynamoDB JSON) as a plain object. Numbers
 * become JS numbers (the Events item holds only small integers as numbers);
 * sets become arrays; binary stays a Uint8Array.
 */
import type { AttributeValue } from 'aws-lambda';

export function fromAttributeValue(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return fromImage(value.M);
  if (value.L !== undefined) return value.L.map(fromAttributeValue);
  if (value.SS !== undefined) return [...value.SS];
  if (value.NS !== undefined) return value.NS.map(Number);
  if (value.B !== undefined) return binary(value.B);
  if (value.BS !== undefined) return value.BS.map(binary);
  throw new Error('Unknown DynamoDB attribute value type');
}

export function fromImage(image: Readonly<Record<string, AttributeValue>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(image)) {
    Object.defineProperty(out, key, { value: fromAttributeValue(value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Lambda delivers binary as base64 text; the SDK's stream client as bytes. */
function binary(value: unknown): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value, 'base64') : (value as Uint8Array);
}
