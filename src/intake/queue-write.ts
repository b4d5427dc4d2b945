/**
 * queue-write.ts — write a message whose content names its own queue ID
 * (the Received: header's `id QUEUEID`, an added Message-Id).
 *
 * Contract: `writeWithQueueId(spool, envelope, build, queue)` returns only
 * when `build(id)` is durable under the ID the spool chose (file and
 * directory fsynced). The spool derives the ID from the temporary file's
 * inode before it writes any content, so the file is written exactly once.
 * Any failure throws QueueWriteError and leaves no file: the caller answers
 * 452 and nothing stays queued.
 *
 * Not here: the queue file format (queue/queue-file.ts), what goes in the
 * content (cleanup.ts).
 */
import type { EnvelopeInput } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';

export function writeWithQueueId(
  spool: Spool,
  envelope: EnvelopeInput,
  build: (queueId: string) => Buffer,
  queue: 'incoming' | 'maildrop' = 'incoming',
): Promise<string> {
  return spool.writeMessage(envelope, build, queue);
}
