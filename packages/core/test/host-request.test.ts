import { describe, expect, it } from 'vitest';
import { signals, type RequestFinishedMessage } from '@closeguard/core';
import { HostRequest } from '@closeguard/core/host';

/** The requestFinished messages of `request`, collected until `closed` resolves. */
async function finishesOf(request: HostRequest, act: () => void): Promise<RequestFinishedMessage[]> {
  const seen: RequestFinishedMessage[] = [];
  const onFinish = (message: RequestFinishedMessage): void => {
    if (message.scope === request.scope) seen.push(message);
  };
  signals.requestFinished.subscribe(onFinish);
  try {
    act();
    await new Promise((resolve) => setTimeout(resolve, 80));
  } finally {
    signals.requestFinished.unsubscribe(onFinish);
  }
  return seen;
}

const newRequest = (abortGrace = 30): HostRequest => new HostRequest({ method: 'GET', url: '/', abortGrace });

describe('HostRequest', () => {
  it("closes 'complete' once the handler settled and the response finished, in either order", async () => {
    for (const order of [['settled', 'over'], ['over', 'settled']]) {
      const request = newRequest(1_000);
      const finishes = await finishesOf(request, () => {
        for (const step of order) {
          if (step === 'settled') request.settled();
          else request.over(true);
        }
      });
      expect(finishes.map(({ reason }) => reason)).toEqual(['complete']);
    }
  });

  it('does not close while only one of the two happened', async () => {
    const request = newRequest(1_000);
    expect(await finishesOf(request, () => request.settled())).toEqual([]);
    expect(request.scope.closed).toBe(false);
    request.over(true);
    await request.scope.close('complete');
  });

  it("closes 'error' when the handler failed and the framework answered", async () => {
    const request = newRequest();
    const finishes = await finishesOf(request, () => {
      request.settled(new Error('handler failed'));
      request.over(true);
    });
    expect(finishes.map(({ reason }) => reason)).toEqual(['error']);
  });

  it("aborts the signal at a hang-up and closes 'aborted' when the handler then settles", async () => {
    const request = newRequest(1_000);
    const finishes = await finishesOf(request, () => {
      request.over(false);
      expect(request.scope.signal.aborted).toBe(true);
      request.settled();
    });
    expect(finishes.map(({ reason }) => reason)).toEqual(['aborted']);
  });

  it("closes 'timeout' when the handler has not settled abortGrace after the response is over", async () => {
    const request = newRequest(20);
    const finishes = await finishesOf(request, () => request.over(false));
    expect(finishes.map(({ reason }) => reason)).toEqual(['timeout']);
    request.settled(); // too late: nothing more happens
    expect(request.scope.closeReason).toBe('timeout');
  });

  it('ignores a second over() or settled()', async () => {
    const request = newRequest(1_000);
    const finishes = await finishesOf(request, () => {
      request.over(true);
      request.over(false);
      request.settled();
      request.settled(new Error('late'));
    });
    expect(finishes.map(({ reason }) => reason)).toEqual(['complete']);
    expect(request.scope.signal.aborted).toBe(false);
  });
});
