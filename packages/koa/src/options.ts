import { CloseguardTypeError } from '@closeguard/core';

/** Checks an options argument: undefined or an object. */
export function checkObject(where: string, options: unknown): asserts options is object | undefined {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${where} takes an options object; received ${options === null ? 'null' : typeof options}`);
  }
}
