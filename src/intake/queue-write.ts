/**
 * queue-write.ts — write a message whose content names its own queue ID
 * (the Received: header's `id QUEUEID`, an added Message-Id) through the
 * Spool API, which only learns the ID when the file exists.
 *
 * Contract: `writeWithQueueId(spool, envelope, build)` calls
 * `spool.writeMessage()` with `build('')`-free placeholder content, then
 * writes the final content `build(id)` to a temporary file in the same queue
 * directory, fsyncs it, renames it over the first file and fsyncs the
 * directory — so when it returns, the final file is durable under the ID the
 * spool chose. Any failure removes the file and throws QueueWriteError: the
 * caller answers 452 and nothing stays queued.
 *
 * Known limitation (reported to the lead): between the first write and the
 * rename a queue manager that moves `incoming/ID` could race with us. The
 * clean fix is a Spool API that derives the ID before writing the content
 * (`writeMessage(envelope, (id) => content)`): the spool already knows the
 * inode before it writes. Until then the daemon must not move a file out of
 * `incoming` before onQueued() fires for it.
 *
 * Not here: the queue file format (queue/queue-file.ts), what goes in the
 * content (cleanup.ts).
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodeQueueFile } from '../queue/queue-file.ts';
import type { EnvelopeInput } from '../queue/queue-file.ts';
import { QueueWriteError } from '../queue/spool.ts';
import type { Spool } from '../queue/spool.ts';

let seq = 0;

async function fsyncPath(path: string, flags: string): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write `build(id)` durably under the queue ID the spool assigns; see the header. */
export async function writeWithQueueId(spool: Spool, envelope: EnvelopeInput, build: (queueId: string) => Buffer): Promise<string> {
  // Same length class as the final content, so the first write fails the same way on a full disk.
  const id = await spool.writeMessage(envelope, build(''));
  const final = spool.path('incoming', id);
  const tmp = join(dirname(final), `tmp.${process.pid}.id${++seq}`);
  try {
    const bytes = encodeQueueFile(envelope, build(id));
    const fh = await open(tmp, 'wx', 0o600);
    try {
      let off = 0;
      while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off, off)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
    await fsyncPath(dirname(final), 'r');
    return id;
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    await unlink(final).catch(() => undefined);
    if (err instanceof QueueWriteError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new QueueWriteError(`queue file write error: incoming: ${err instanceof Error ? err.message : String(err)}`, code, { cause: err });
  }
}
