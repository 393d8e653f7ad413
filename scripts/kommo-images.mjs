// Draws the Kommo widget images (manifest/kommo/images/*.png) at the sizes Kommo requires:
// a WhatsApp-green speech bubble with a white "CRM" mark, and the "InCRM" word beside it on the
// wide formats. Pure JS: shapes are sampled 4×4 per pixel for smooth edges and written as RGBA
// PNGs with zlib. Run `node scripts/kommo-images.mjs` after changing the artwork; the output is
// committed.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

// Kommo: logo 130×100, logo_main 400×272, logo_medium 240×84, logo_min 84×84, logo_small 108×108.
export const KOMMO_IMAGES = {
  'logo.png': [130, 100],
  'logo_main.png': [400, 272],
  'logo_medium.png': [240, 84],
  'logo_min.png': [84, 84],
  'logo_small.png': [108, 108],
};

const GREEN = [37, 211, 102];
const DARK = [7, 94, 84];
const WHITE = [255, 255, 255];

// 5×7 bitmap glyphs for the letters we draw.
const GLYPHS = {
  I: ['.###.', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  N: ['#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#', '#...#'],
  C: ['.###.', '#...#', '#....', '#....', '#....', '#...#', '.###.'],
  R: ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
  M: ['#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'],
};

/** A text shape: true where (x, y) falls on a glyph cell. Origin top-left, `cell` = size of one dot. */
function textShape(text, x0, y0, cell) {
  const advance = 6 * cell;
  return (x, y) => {
    const i = Math.floor((x - x0) / advance);
    if (i < 0 || i >= text.length) return false;
    const gx = Math.floor((x - x0 - i * advance) / cell);
    const gy = Math.floor((y - y0) / cell);
    if (gx < 0 || gx > 4 || gy < 0 || gy > 6) return false;
    return GLYPHS[text[i]][gy][gx] === '#';
  };
}
const textWidth = (text, cell) => (text.length * 6 - 1) * cell;

/** The bubble: a circle with a tail at the lower left, like a chat icon. */
function bubbleShape(cx, cy, r) {
  const inTail = (x, y) => {
    // Triangle (cx - 0.95r, cy + 0.95r), (cx - 0.55r, cy + 0.35r), (cx - 0.1r, cy + 0.75r).
    const a = [cx - 0.95 * r, cy + 0.95 * r], b = [cx - 0.55 * r, cy + 0.3 * r], c = [cx - 0.05 * r, cy + 0.8 * r];
    const s = (p, q, u) => (p[0] - u[0]) * (q[1] - u[1]) - (q[0] - u[0]) * (p[1] - u[1]);
    const pt = [x, y];
    const d1 = s(pt, a, b), d2 = s(pt, b, c), d3 = s(pt, c, a);
    return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
  };
  return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r || inTail(x, y);
}

function draw(w, h) {
  const aspect = w / h;
  // Wide strips: bubble left, word right. Landscape cards: bubble above the word. Squares: bubble.
  const layout = aspect > 2 ? 'side' : aspect > 1.2 ? 'stacked' : 'icon';
  let cx, cy, r;
  if (layout === 'side') [cx, cy, r] = [h * 0.5, h * 0.47, h * 0.4];
  else if (layout === 'stacked') [cx, cy, r] = [w / 2 + h * 0.04, h * 0.36, h * 0.27];
  else [cx, cy, r] = [w / 2 + w * 0.04, h * 0.46, Math.min(w, h) * 0.4];
  const layers = [{ shape: bubbleShape(cx, cy, r), color: GREEN }];
  const markCell = (1.3 * r) / textWidth('CRM', 1);
  layers.push({ shape: textShape('CRM', cx - textWidth('CRM', markCell) / 2, cy - 3.5 * markCell, markCell), color: WHITE });
  if (layout === 'side') {
    const x0 = cx + r + h * 0.15;
    const cell = Math.min((w - x0 - h * 0.1) / textWidth('INCRM', 1), (h * 0.42) / 7);
    layers.push({ shape: textShape('INCRM', x0, h / 2 - 3.5 * cell, cell), color: DARK });
  } else if (layout === 'stacked') {
    const cell = Math.min((w * 0.62) / textWidth('INCRM', 1), (h * 0.17) / 7);
    layers.push({ shape: textShape('INCRM', w / 2 - textWidth('INCRM', cell) / 2, h * 0.8 - 3.5 * cell, cell), color: DARK });
  }
  const px = Buffer.alloc(w * h * 4);
  const S = 4;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let rr = 0, gg = 0, bb = 0, aa = 0;
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const fx = x + (sx + 0.5) / S, fy = y + (sy + 0.5) / S;
          let col = null;
          for (const l of layers) if (l.shape(fx, fy)) col = l.color;
          if (col) {
            rr += col[0];
            gg += col[1];
            bb += col[2];
            aa += 1;
          }
        }
      }
      const o = (y * w + x) * 4;
      if (aa) {
        px[o] = Math.round(rr / aa);
        px[o + 1] = Math.round(gg / aa);
        px[o + 2] = Math.round(bb / aa);
      }
      px[o + 3] = Math.round((255 * aa) / (S * S));
    }
  }
  return px;
}

const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf) {
  let c = -1;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** RGBA pixels → PNG (8-bit, colour type 6, filter 0 on every row). */
export function encodePng(w, h, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const raw = Buffer.alloc((w * 4 + 1) * h);
  for (let y = 0; y < h; y++) rgba.copy(raw, y * (w * 4 + 1) + 1, y * w * 4, (y + 1) * w * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const outDir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'manifest', 'kommo', 'images');
if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, [w, h]] of Object.entries(KOMMO_IMAGES)) {
    const png = encodePng(w, h, draw(w, h));
    fs.writeFileSync(path.join(outDir, name), png);
    console.log(`${name} ${w}×${h} ${png.length} bytes`);
  }
}
