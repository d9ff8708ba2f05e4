/**
 * Section 5's rows against the CPU floor (bench/lib/floor.ts measures it): the service's CPU per
 * video by process, one video at a time and at saturation, over the floor. Pure, so the test suite
 * checks it without starting a decoder or a session.
 */
import type { CpuFloor, CpuFloorRow, FloorStep, ServiceStep } from './report.js';
import { bestStep } from './service.js';

/** The step with the fewest clients: one video at a time where the run had one client. */
export function fewestStep(steps: ServiceStep[]): ServiceStep | undefined {
  return steps.reduce<ServiceStep | undefined>((a, b) => (a === undefined || b.concurrency < a.concurrency ? b : a), undefined);
}

/** One step against the floor; against the floor paced as one client too when `paced` (the step's workers slept between videos). */
function floorStep(step: ServiceStep, floor: CpuFloor, paced: boolean): FloorStep | undefined {
  const c = step.cpu;
  if (c?.inference_s_per_video === undefined || c.decode_s_per_video === undefined) return undefined;
  const cpu = { main: c.main_s_per_video * 1000, inference: c.inference_s_per_video * 1000, decode: c.decode_s_per_video * 1000 };
  const total = cpu.main + cpu.inference + cpu.decode;
  const ratioPaced = paced && floor.paced ? { ratio_paced: total / floor.paced.total_ms } : {};
  return { concurrency: step.concurrency, duration_s: step.duration_s, videos: step.ok, throughput: step.throughput, cpu_ms: { ...cpu, total }, ratio: total / floor.total_ms, ...ratioPaced };
}

/** One set of clips' row: the step at one client (else the fewest) and the saturation step (the most videos/s), against the floor. */
export function floorRow(clips: string, files: number, role: CpuFloorRow['role'], floor: CpuFloor, steps: ServiceStep[]): CpuFloorRow | undefined {
  const fewest = fewestStep(steps);
  if (fewest === undefined) return undefined;
  const best = bestStep(steps);
  const one = floorStep(fewest, floor, true);
  // At saturation no worker sleeps between videos: the floor measured back to back is its measure.
  const saturation = floorStep(best, floor, false);
  const cores = best.cpu?.cores;
  if (!one || !saturation || cores === undefined) return undefined;
  const limit = cores / (floor.total_ms / 1000);
  return { clips, files, role, cores, floor, one, saturation, floor_limit: limit, ratio_floor_limit: saturation.throughput / limit };
}
