/**
 * Runs the items of one batch with at most `lanes` in progress, each lane taking the next item when
 * its previous one settles. Every item settles on its own (one failure never fails the rest).
 *
 * Fairness: each item still goes through the service's FIFO work queue, and a batch never has more
 * than `lanes` items waiting in it, so a single request that arrives during a batch waits behind at
 * most `lanes` of the batch's videos, not behind the whole batch.
 */
export async function inLanes<T, R>(items: readonly T[], lanes: number, work: (item: T, index: number) => Promise<R>): Promise<Array<PromiseSettledResult<R>>> {
  const settled = new Array<PromiseSettledResult<R>>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        settled[index] = { status: 'fulfilled', value: await work(items[index] as T, index) };
      } catch (reason) {
        settled[index] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane));
  return settled;
}
