/**
 * An in-memory stand-in for S3 (no emulator here provides it) with the
 * answers the evaluation's steps rely on: NoSuchKey for a missing key,
 * keys listed in ascending order.
 */
import type { EvaluationObjects } from '#shared/evaluation-steps.ts';

/** An in-memory bucket store with S3's answers: NoSuchKey, keys listed in ascending order; `reads` holds every key got, in order. */
export function memoryObjects(): EvaluationObjects & { readonly keys: (bucket: string) => string[]; readonly reads: string[] } {
  const reads: string[] = [];
  const stored = new Map<string, Buffer>();
  const id = (bucket: string, key: string) => `${bucket}\u0000${key}`;
  const keys = (bucket: string) =>
    [...stored.keys()]
      .filter((k) => k.startsWith(`${bucket}\u0000`))
      .map((k) => k.slice(bucket.length + 1))
      .sort();
  return {
    get: async (bucket, key) => {
      reads.push(key);
      const body = stored.get(id(bucket, key));
      if (!body) throw new Error(`NoSuchKey: ${bucket}/${key}`);
      return body;
    },
    put: async (bucket, key, body) => {
      stored.set(id(bucket, key), Buffer.from(body));
    },
    list: async (bucket, prefix) => keys(bucket).filter((k) => k.startsWith(prefix)),
    keys,
    reads,
  };
}

