import { Writable } from 'node:stream';

/** A writable that keeps what it is given, standing in for stdout/stderr (isTTY as asked). */
export function sink(tty = false) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { isTTY?: boolean };
  stream.isTTY = tty;
  return { stream, text: () => chunks.join('') };
}
