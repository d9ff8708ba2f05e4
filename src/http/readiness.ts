/**
 * The one answer to "should traffic come here?", shared by /readyz, /v2/health/ready, the OIP
 * ServerReady/ModelReady calls and gRPC health checking, so they can never disagree.
 */
import type { Lifecycle } from './lifecycle.js';

export function isReady(lifecycle: Pick<Lifecycle, 'status'>): boolean {
  return lifecycle.status() === 'ready';
}
