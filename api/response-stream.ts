import type { Response } from 'express';

/**
 * Write one piece of a streamed answer and, when the socket's buffer is full, wait until it
 * drains (or the client went away): a slow client slows the producer instead of growing our
 * memory. Resolves false once the response is closed, so the caller stops reading.
 */
export async function writeWithBackpressure(res: Response, chunk: string | Buffer): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false;
  if (chunk.length === 0 || res.write(chunk)) return !res.destroyed;
  return new Promise<boolean>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve(!res.destroyed && !res.writableEnded);
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
