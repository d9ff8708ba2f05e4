import { describe, expect, it } from 'vitest';
import { cropGeometry, filterChain, Preprocessor } from '../../src/engine/preprocess.js';

describe('cropGeometry', () => {
  it('resizes a landscape frame so its height is the short side, long side rounded half up', () => {
    // 1920x1080 → 128 high: 1920*128/1080 = 227.56 → 228; crop offset floor((228-112)/2) = 58.
    expect(cropGeometry(1920, 1080, 128, 112)).toEqual({ scaleWidth: 228, scaleHeight: 128, cropX: 58, cropY: 8, size: 112 });
  });

  it('resizes a portrait frame so its width is the short side', () => {
    expect(cropGeometry(1080, 1920, 128, 112)).toEqual({ scaleWidth: 128, scaleHeight: 228, cropX: 8, cropY: 58, size: 112 });
  });

  it('rounds x.5 up and floors odd crop offsets', () => {
    // 320x240 → 128: 320*128/240 = 170.67 → 171; (171-112)/2 = 29.5 → 29.
    expect(cropGeometry(320, 240, 128, 112)).toMatchObject({ scaleWidth: 171, cropX: 29 });
    // 200x128 at short side 128 stays 200 wide; 333x187 → 333*128/187 = 227.94 → 228.
    expect(cropGeometry(200, 128, 128, 112).scaleWidth).toBe(200);
    expect(cropGeometry(333, 187, 128, 112)).toMatchObject({ scaleWidth: 228, scaleHeight: 128 });
    // Exactly .5: 100x80 → 64 short: 100*64/80 = 80 exactly; 90x60 → 55: 82.5 → 83.
    expect(cropGeometry(90, 60, 55, 48)).toMatchObject({ scaleWidth: 83, scaleHeight: 55, cropX: 17, cropY: 3 });
  });

  it('keeps a square frame square', () => {
    expect(cropGeometry(500, 500, 128, 112)).toEqual({ scaleWidth: 128, scaleHeight: 128, cropX: 8, cropY: 8, size: 112 });
  });

  it('upscales frames smaller than the target', () => {
    expect(cropGeometry(64, 48, 128, 112)).toMatchObject({ scaleWidth: 171, scaleHeight: 128 });
  });
});

describe('filterChain', () => {
  it('scales, converts to rgb24, then crops', () => {
    const g = cropGeometry(320, 240, 128, 112);
    expect(filterChain(g, 'bilinear')).toBe('scale=171:128:flags=bilinear,format=rgb24,crop=112:112:29:8');
  });
});

describe('Preprocessor.toTensor_', () => {
  const input = { frames: 2, size: 2, mean: [127.5, 127.5, 127.5] as [number, number, number], std: [127.5, 127.5, 127.5] as [number, number, number] };
  const pre = new Preprocessor(input as never);

  it('writes NCTHW normalised floats and maps slots to decoded frames', () => {
    // One decoded frame (2x2 pixels, rgb), used for both time slots.
    const rgb = new Uint8Array([0, 255, 127.5, 255, 0, 0, 0, 0, 255, 51, 102, 204]);
    const out = new Float32Array(pre.tensorLength);
    pre.toTensor_(rgb, [0, 0], out);
    const plane = 4;
    const at = (c: number, t: number, i: number): number => out[(c * 2 + t) * plane + i] as number;
    expect(at(0, 0, 0)).toBe(-1); // R of pixel 0
    expect(at(1, 0, 0)).toBe(1); // G of pixel 0
    expect(at(0, 0, 1)).toBe(1); // R of pixel 1
    expect(at(2, 0, 2)).toBe(1); // B of pixel 2
    expect(at(0, 1, 3)).toBeCloseTo((51 - 127.5) / 127.5, 6);
    expect(at(2, 1, 3)).toBeCloseTo((204 - 127.5) / 127.5, 6);
  });

  it('reuses the caller buffer and overwrites every value', () => {
    const out = new Float32Array(pre.tensorLength).fill(Number.NaN);
    const rgb = new Uint8Array(2 * 12).fill(127);
    const same = pre.toTensor_(rgb, [0, 1], out);
    expect(same).toBe(out);
    expect(Array.from(out).every((v) => Number.isFinite(v))).toBe(true);
  });

  it('uses per-channel mean and std', () => {
    const p = new Preprocessor({ frames: 1, size: 1, mean: [0, 100, 200], std: [1, 2, 4] } as never);
    const out = p.toTensor_(new Uint8Array([10, 10, 10]), [0], new Float32Array(3));
    expect(Array.from(out)).toEqual([10, -45, -47.5]);
  });

  it('refuses a wrongly sized buffer or a slot outside the decoded frames', () => {
    expect(() => pre.toTensor_(new Uint8Array(12), [0, 0], new Float32Array(3))).toThrow(/needs 24/);
    expect(() => pre.toTensor_(new Uint8Array(12), [0, 1], new Float32Array(24))).toThrow(/outside/);
  });
});
