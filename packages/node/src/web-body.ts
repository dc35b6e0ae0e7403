import { ReadableStream, type ReadableStreamDefaultController, type ReadableStreamReadResult } from 'node:stream/web';

/** A web body passed through so that its end can be told, and stopped when nobody will read it. */
export interface PassedWebBody {
  /** What the framework sends in place of the body. */
  readonly stream: ReadableStream<Uint8Array>;
  /** Cancels the body unless it already ended (the response is over: nobody will read the rest). */
  readonly stop: () => void;
}

/**
 * Passes a web body (a `Response`'s `ReadableStream`) through, reading nothing ahead of the
 * framework, and calls `ended` once when it is done: read to its end, errored, or cancelled — then
 * only once its source's `cancel()` settled (a cursor closed, a `stream()` callback told of the
 * abort), whether the framework cancelled it on a hang-up or `stop()` did.
 */
export function passWebBody(body: ReadableStream<Uint8Array>, ended: () => void): PassedWebBody {
  const reader = body.getReader();
  let open = true;
  let cancelling = false; // the source is being cancelled: a pending read resolves as done, which is not its end
  let cancelled = false; // the framework cancelled the stream it reads: it is closed
  const end = (): void => {
    if (!open) return;
    open = false;
    ended();
  };
  const cancelSource = (reason?: unknown): Promise<void> => {
    if (!open || cancelling) return Promise.resolve();
    cancelling = true;
    return reader.cancel(reason).then(end, end);
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (!cancelled) controller.error(error);
          end();
          return;
        }
        if (cancelled) return;
        if (!chunk.done) {
          controller.enqueue(chunk.value);
          return;
        }
        controller.close();
        if (!cancelling) end();
      },
      cancel(reason: unknown): Promise<void> {
        cancelled = true;
        return cancelSource(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, stop: () => void cancelSource() };
}
