/**
 * outbox.ts — messages between the master's thread and a delivery worker
 * (thread-pool.ts, thread-main.ts), posted once per event-loop turn: every
 * postMessage wakes the other thread, and at full load many requests (and
 * results) are ready in the same turn. One item goes as itself; several go
 * as `{kind: 'batch', items}` in the order they were posted.
 *
 * Not here: what the messages mean (the two thread files).
 */
export class Outbox {
  private items: unknown[] = [];
  private target: { postMessage(m: unknown): void } | undefined;

  post(target: { postMessage(m: unknown): void }, item: unknown): void {
    if (this.target !== target) this.flush();
    this.target = target;
    this.items.push(item);
    if (this.items.length === 1) setImmediate(() => this.flush());
  }

  flush(): void {
    const items = this.items;
    const target = this.target;
    if (items.length === 0 || !target) return;
    this.items = [];
    target.postMessage(items.length === 1 ? items[0] : { kind: 'batch', items });
  }
}

