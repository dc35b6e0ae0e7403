import http from 'node:http';

/** Sends a GET and hangs up after `ms`, before the response is complete. */
export function hangUpAfter(url: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => res.resume());
    req.on('error', () => resolve());
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms);
  });
}
