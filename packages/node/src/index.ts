export { requestListener } from './listener.ts';
export type { RequestListenerOptions } from './listener.ts';
