/**
 * Run `task` over `items` with at most `limit` tasks in flight at once, in
 * the items' order (each worker takes the next item when its last one
 * settles). Resolves when every task has; rejects with the first task's
 * error (the tasks in flight still run to their end). `limit` below 1
 * counts as 1.
 *
 * The store's bounded fan-out: the profile function's transactions
 * (profile-batch.ts) and the statistics cache's shard reads
 * (statistics.ts `queryShards`).
 */
export async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, Math.floor(limit)), items.length) }, worker));
}
