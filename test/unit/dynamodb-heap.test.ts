/**
 * The JVM heap bound of DynamoDB Local (`-Xmx`): option over
 * KAIROS_DYNAMODB_HEAP over the default, and a malformed size refused with
 * the variable's name (the JVM would otherwise refuse to start, saying less).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DYNAMODB_HEAP, resolveMaxHeap } from '#local/dynamodb.ts';

describe('resolveMaxHeap', () => {
  it('defaults to 512m', () => {
    expect(DEFAULT_DYNAMODB_HEAP).toBe('512m');
    expect(resolveMaxHeap(undefined, {})).toBe('512m');
    expect(resolveMaxHeap(undefined, { KAIROS_DYNAMODB_HEAP: '  ' })).toBe('512m');
  });

  it('takes KAIROS_DYNAMODB_HEAP, and an explicit option over it', () => {
    expect(resolveMaxHeap(undefined, { KAIROS_DYNAMODB_HEAP: '2g' })).toBe('2g');
    expect(resolveMaxHeap('768m', { KAIROS_DYNAMODB_HEAP: '2g' })).toBe('768m');
    expect(resolveMaxHeap(undefined, { KAIROS_DYNAMODB_HEAP: '1048576k' })).toBe('1048576k');
  });

  it.each(['512 m', '-1g', '0', '1t', 'lots', '512m -XX:+Foo', '1.5g'])('refuses %j with the variable name', (value) => {
    expect(() => resolveMaxHeap(undefined, { KAIROS_DYNAMODB_HEAP: value })).toThrow(/KAIROS_DYNAMODB_HEAP must be a JVM heap size/);
  });
});
