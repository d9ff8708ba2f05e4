/**
 * The stop-map colours, shared by the /demo page (injected into its script) and the CLI's PNG
 * figure so both read the same: near-black for a patch the Glimpser dropped, then viridis from
 * purple (stopped after the first joint layer) to yellow (ran to the last one). Viridis because it
 * stays ordered in grey scale and for the common colour-vision deficiencies.
 */
export type Rgb = readonly [number, number, number];

export const STOP_COLOURS = {
  viridis: [
    [68, 1, 84],
    [65, 68, 135],
    [42, 120, 142],
    [34, 168, 132],
    [122, 209, 81],
    [253, 231, 37],
  ] as Rgb[],
  dropped: [20, 20, 24] as Rgb,
  /** Overlay opacity: dropped patches mostly hidden, the others tinted so the frame shows through. */
  droppedAlpha: 0.78,
  haltedAlpha: 0.5,
};

/** Colour of stop layer `layer` (0 = dropped) for a model with `layers` joint layers. */
export function layerColour(layer: number, layers: number): Rgb {
  if (layer === 0) return STOP_COLOURS.dropped;
  const stops = STOP_COLOURS.viridis;
  const x = layers <= 1 ? 1 : (layer - 1) / (layers - 1);
  const at = x * (stops.length - 1);
  const i = Math.min(Math.floor(at), stops.length - 2);
  const f = at - i;
  const a = stops[i] as Rgb;
  const b = stops[i + 1] as Rgb;
  return [0, 1, 2].map((c) => Math.round((a[c] as number) + ((b[c] as number) - (a[c] as number)) * f)) as unknown as Rgb;
}
