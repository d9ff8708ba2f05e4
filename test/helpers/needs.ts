/**
 * Suites that need a tool or an environment the machine may lack (kustomize, the project's Python).
 * Run on their own (`npx vitest run test/deploy`) they skip when it is missing. `make test` sets
 * HALTINGVT_ALL_SUITES=1, and there a missing need is a failing test that names it instead: a
 * broken set-up must not pass by quietly running less.
 */
import { it } from 'vitest';

export const ALL_SUITES = process.env.HALTINGVT_ALL_SUITES === '1';

/**
 * Whether a suite can run: `needs` maps what it needs, said so that a reader knows how to get it,
 * to whether it is there. False when something is missing, so `describe.runIf(suiteNeeds(...))`
 * skips; under HALTINGVT_ALL_SUITES=1 it also registers, where it is called, a test that fails
 * with the list.
 */
export function suiteNeeds(needs: Record<string, unknown>): boolean {
  const missing = Object.entries(needs)
    .filter(([, available]) => !available)
    .map(([what]) => what);
  if (missing.length === 0) return true;
  if (ALL_SUITES) {
    it(`has what it needs: ${missing.join(', ')}`, () => {
      throw new Error(`missing under HALTINGVT_ALL_SUITES=1 (make test), so the suite would be skipped: ${missing.join('; ')}`);
    });
  }
  return false;
}
