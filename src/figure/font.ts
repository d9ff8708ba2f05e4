/**
 * A 3×5 bitmap font for the CLI figure's few words (labels, numbers): upper case, digits and the
 * punctuation the figure prints. Lower case is drawn as upper case; anything else as '?'.
 */
const ROWS: Record<string, string> = {
  A: '.X. X.X XXX X.X X.X', B: 'XX. X.X XX. X.X XX.', C: '.XX X.. X.. X.. .XX', D: 'XX. X.X X.X X.X XX.',
  E: 'XXX X.. XX. X.. XXX', F: 'XXX X.. XX. X.. X..', G: '.XX X.. X.X X.X .XX', H: 'X.X X.X XXX X.X X.X',
  I: 'XXX .X. .X. .X. XXX', J: '..X ..X ..X X.X .X.', K: 'X.X X.X XX. X.X X.X', L: 'X.. X.. X.. X.. XXX',
  M: 'X.X XXX XXX X.X X.X', N: 'XX. X.X X.X X.X X.X', O: '.X. X.X X.X X.X .X.', P: 'XX. X.X XX. X.. X..',
  Q: '.X. X.X X.X XX. .XX', R: 'XX. X.X XX. X.X X.X', S: '.XX X.. .X. ..X XX.', T: 'XXX .X. .X. .X. .X.',
  U: 'X.X X.X X.X X.X XXX', V: 'X.X X.X X.X X.X .X.', W: 'X.X X.X XXX XXX X.X', X: 'X.X X.X .X. X.X X.X',
  Y: 'X.X X.X .X. .X. .X.', Z: 'XXX ..X .X. X.. XXX',
  '0': 'XXX X.X X.X X.X XXX', '1': '.X. XX. .X. .X. XXX', '2': 'XX. ..X .X. X.. XXX', '3': 'XX. ..X .X. ..X XX.',
  '4': 'X.X X.X XXX ..X ..X', '5': 'XXX X.. XX. ..X XX.', '6': '.XX X.. XXX X.X XXX', '7': 'XXX ..X .X. .X. .X.',
  '8': 'XXX X.X XXX X.X XXX', '9': 'XXX X.X XXX ..X XX.',
  ' ': '... ... ... ... ...', '.': '... ... ... ... .X.', '%': 'X.X ..X .X. X.. X.X', _: '... ... ... ... XXX',
  '/': '..X ..X .X. X.. X..', ':': '... .X. ... .X. ...', '-': '... ... XXX ... ...', '(': '.X. X.. X.. X.. .X.',
  ')': '.X. ..X ..X ..X .X.', '=': '... XXX ... XXX ...', ',': '... ... ... .X. X..', '+': '... .X. XXX .X. ...',
  '#': 'X.X XXX X.X XXX X.X', '?': 'XXX ..X .X. ... .X.',
};

export const GLYPH_WIDTH = 3;
export const GLYPH_HEIGHT = 5;

/** Each glyph as 5 rows of 3 booleans. */
const GLYPHS = new Map(Object.entries(ROWS).map(([ch, rows]) => [ch, rows.split(' ').map((row) => Array.from(row, (c) => c === 'X'))]));

export function glyph(ch: string): boolean[][] {
  return GLYPHS.get(ch.toUpperCase()) ?? (GLYPHS.get('?') as boolean[][]);
}

/** Width in pixels of `text` at `scale` (one blank column between glyphs). */
export function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_WIDTH + 1) - 1) * scale;
}
