// Inline SVG icons (no icon font, nothing to load): WhatsApp-like ticks, clock, clip, mic, send.
import type { TickGlyph } from '../logic';

const svg = (d: string, w = 16, h = 15) => (
  <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} fill="currentColor" aria-hidden="true">
    <path d={d} />
  </svg>
);

export function TickIcon({ glyph }: { glyph: TickGlyph }) {
  switch (glyph) {
    case 'clock':
      return (
        <svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.3">
          <circle cx="7" cy="7" r="5.5" />
          <path d="M7 4v3.3l2 1.3" />
        </svg>
      );
    case 'single':
      return svg('M10.9 3.3 5.4 9.9 3.1 7.6l-.9.9 3.3 3.3 6.3-7.7z');
    case 'double':
      return svg('M15 3.3 9.5 9.9l-.6-.6-.9.9 1.6 1.6 6.3-7.7zM10.9 3.3 5.4 9.9 3.1 7.6l-.9.9 3.3 3.3 6.3-7.7z');
    case 'error':
      return svg('M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zm.8 10H7.2V10h1.6zm0-3H7.2v-4h1.6z');
    default:
      return null;
  }
}

export const ClipIcon = () => svg('M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z', 24, 24);
export const MicIcon = () => svg('M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z', 24, 24);
export const SendIcon = () => svg('M2 21 23 12 2 3v7l15 2-15 2z', 24, 24);
export const TrashIcon = () => svg('M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z', 24, 24);
