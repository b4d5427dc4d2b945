/**
 * queue-write.ts — write a queue file whose content arrives in pieces and names its own
 * queue ID (the Received: header's `id QUEUEID`, an added Message-Id): the content goes to
 * the disk as it comes, the envelope last.
 *
 * Contract:
 * - `QueueFileStream.open(spool, draft, queue)` creates the temporary file (spool
 *   openMessage()); its queue ID is known at once. The space for the fixed header, the
 *   status bytes and the envelope is reserved from `draft` (queue-file.ts
 *   envelopeReserve()): the final envelope may differ from the draft only in its flags.
 * - `write()` appends content; pieces are gathered into writes of up to 256 KiB and the
 *   returned promise settles when the disk has what the caller may no longer hold (the
 *   caller's backpressure). Memory per message stays around one write buffer.
 * - `finish(envelope)` writes the envelope and the fixed header (with the content's length
 *   and CRC) in front of the content, then commits: file fsynced, renamed to the ID,
 *   directory fsynced — or, for a message that fit in the write buffer, the whole file
 *   in one write made durable by the spool's group-commit journal (spool.ts, journal.ts) —
 *   only then does it resolve (then, and only then, 250).
 * - Any failure is a QueueWriteError and leaves no file; `abort()` removes the temporary
 *   file (a refused message, a lost connection).
 * - `writeWithQueueId()` writes a whole message built in memory (notices, small copies).
 *
 * Not here: the queue file format (queue/queue-file.ts), what goes in the content
 * (cleanup.ts).
 */
import { ContentCounter, encodeQueueFileHead, envelopeReserve, HEADER_LENGTH } from '../queue/queue-file.ts';
import type { EnvelopeInput } from '../queue/queue-file.ts';
import type { MessageFile, Spool } from '../queue/spool.ts';

export function writeWithQueueId(
  spool: Spool,
  envelope: EnvelopeInput,
  build: (queueId: string) => Buffer,
  queue: 'incoming' | 'maildrop' = 'incoming',
): Promise<string> {
  return spool.writeMessage(envelope, build, queue);
}

const WRITE_SIZE = 256 * 1024;

export class QueueFileStream {
  private readonly counter = new ContentCounter();
  private buffered: Buffer[] = [];
  private bufferedLen = 0;
  /** File offset of the next content write. */
  private offset: number;
  private done = false;

  private constructor(
    private readonly file: MessageFile,
    private readonly reserve: number,
    private readonly recipients: number,
  ) {
    this.offset = HEADER_LENGTH + recipients + reserve;
  }

  static async open(spool: Spool, draft: EnvelopeInput, queue: 'incoming' | 'maildrop' = 'incoming'): Promise<QueueFileStream> {
    const file = await spool.openMessage(queue);
    return new QueueFileStream(file, envelopeReserve(draft), draft.recipients.length);
  }

  get id(): string {
    return this.file.id;
  }

  /** Content bytes so far. */
  get contentLength(): number {
    return this.counter.bytes;
  }

  /** Append content; resolves once the caller's pieces no longer need to be held. */
  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.counter.push(chunk);
    this.buffered.push(chunk);
    this.bufferedLen += chunk.length;
    if (this.bufferedLen >= WRITE_SIZE) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.bufferedLen === 0) return;
    const data = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedLen);
    const at = this.offset;
    this.offset += data.length;
    this.buffered = [];
    this.bufferedLen = 0;
    await this.file.write(data, at);
  }

  /** Write the envelope in front of the content and make the file durable; returns the ID. */
  async finish(envelope: EnvelopeInput): Promise<string> {
    if (this.done) throw new Error('QueueFileStream: finished twice');
    if (envelope.recipients.length !== this.recipients) throw new RangeError('QueueFileStream: the recipient count changed');
    this.done = true;
    const head = encodeQueueFileHead(envelope, this.counter.facts(), this.reserve);
    if (this.offset === HEADER_LENGTH + this.recipients + this.reserve) {
      // Nothing written yet (the usual small message): the whole file in one write, made
      // durable by the spool's journal when it has one (one fdatasync for many messages).
      const whole = [head, ...this.buffered];
      this.buffered = [];
      this.bufferedLen = 0;
      await this.file.commit(whole);
      return this.file.id;
    }
    await this.flush();
    await this.file.write(head, 0);
    await this.file.commit();
    return this.file.id;
  }

  async abort(): Promise<void> {
    this.done = true;
    this.buffered = [];
    this.bufferedLen = 0;
    await this.file.abort();
  }
}
