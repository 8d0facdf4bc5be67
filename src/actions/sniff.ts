/**
 * Content sniffing for files the relay downloads on a GPT's behalf. The type a user's file claims (its
 * extension, ChatGPT's `mime_type`, the download host's Content-Type) is untrusted: only the first bytes
 * decide. Names and hints refine the answer only where bytes cannot: the subtype of a text file and the
 * kind of a ZIP-based office document.
 */

/** How many leading bytes `sniffMime` wants to see (fewer is fine when the file is shorter). */
export const SNIFF_BYTES = 8192;

export const OCTET_STREAM = 'application/octet-stream';

const TEXT_BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  json: 'application/json',
  jsonl: 'application/jsonl',
  ndjson: 'application/jsonl',
  md: 'text/markdown',
  markdown: 'text/markdown',
};

/** Text types a hint (ChatGPT's `mime_type`) may select once the bytes are known to be text. */
const TEXT_HINTS: Record<string, string> = {
  'text/plain': 'text/plain',
  'text/csv': 'text/csv',
  'application/csv': 'text/csv',
  'text/tab-separated-values': 'text/tab-separated-values',
  'application/json': 'application/json',
  'text/json': 'application/json',
  'application/jsonl': 'application/jsonl',
  'application/x-ndjson': 'application/jsonl',
  'text/markdown': 'text/markdown',
  'text/x-markdown': 'text/markdown',
};

const ZIP_BY_EXTENSION: Record<string, string> = {
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  epub: 'application/epub+zip',
  zip: 'application/zip',
};

export interface SniffHints {
  /** The file's name (only its extension is used, and only for text and ZIP-based files). */
  name?: string;
  /** The claimed MIME type (only used to pick a text subtype). */
  mimeType?: string;
  /** True when `head` is the whole file (so a UTF-8 sequence cut at the end is an error, not truncation). */
  complete?: boolean;
}

export function extensionOf(name: string | undefined): string {
  if (!name) return '';
  const base = name.split(/[/\\]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

const ascii = (head: Uint8Array, offset: number, text: string): boolean => {
  if (head.length < offset + text.length) return false;
  for (let i = 0; i < text.length; i++) if (head[offset + i] !== text.charCodeAt(i)) return false;
  return true;
};

function indexOfAscii(head: Uint8Array, text: string, limit: number): number {
  const end = Math.min(head.length, limit) - text.length;
  for (let i = 0; i <= end; i++) if (ascii(head, i, text)) return i;
  return -1;
}

/** The sniffed MIME type of a file from its first bytes; `application/octet-stream` when unknown. */
export function sniffMime(head: Uint8Array, hints: SniffHints = {}): string {
  const b = head;
  if (b.length === 0) return OCTET_STREAM;
  const ext = extensionOf(hints.name);

  // Images
  if (ascii(b, 0, '\x89PNG\r\n\x1a\n')) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'image/gif';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'image/webp';

  // Documents
  if (ascii(b, 0, '%PDF-')) return 'application/pdf';

  // Audio / video containers
  if (ascii(b, 4, 'ftyp') && b.length >= 12) {
    const brand = String.fromCharCode(b[8], b[9], b[10], b[11]);
    if (brand === 'qt  ') return 'video/quicktime';
    if (brand === 'M4A ' || brand === 'M4B ') return 'audio/mp4';
    if (brand === 'avif' || brand === 'avis') return 'image/avif';
    if (['heic', 'heix', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'image/heic';
    return 'video/mp4';
  }
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) {
    return indexOfAscii(b, 'webm', 64) !== -1 ? 'video/webm' : 'video/x-matroska';
  }
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE')) return 'audio/wav';
  if (ascii(b, 0, 'ID3')) return 'audio/mpeg';
  if (ascii(b, 0, 'OggS')) return 'audio/ogg';
  if (ascii(b, 0, 'fLaC')) return 'audio/flac';
  if (b.length >= 2 && b[0] === 0xff && (b[1] & 0xe0) === 0xe0) {
    const version = (b[1] >> 3) & 3;
    const layer = (b[1] >> 1) & 3;
    if (layer === 0 && (b[1] & 0xf6) === 0xf0) return 'audio/aac'; // ADTS
    if (version !== 1 && layer !== 0) return 'audio/mpeg';
  }

  // ZIP-based formats: the bytes say "zip"; only the extension can say which office format it is.
  if (ascii(b, 0, 'PK\x03\x04') || ascii(b, 0, 'PK\x05\x06')) return ZIP_BY_EXTENSION[ext] ?? 'application/zip';

  // Text: valid UTF-8, no NULs, hardly any control characters.
  if (looksLikeText(b, hints.complete === true)) {
    const byExt = TEXT_BY_EXTENSION[ext];
    if (byExt) return byExt;
    const hinted = hints.mimeType ? TEXT_HINTS[hints.mimeType.split(';')[0].trim().toLowerCase()] : undefined;
    return hinted ?? 'text/plain';
  }
  return OCTET_STREAM;
}

function looksLikeText(b: Uint8Array, complete: boolean): boolean {
  let control = 0;
  for (const byte of b) {
    if (byte === 0) return false;
    // Tab, LF, FF, CR and ESC are normal in text files; other C0 controls are a sign of binary data.
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d && byte !== 0x1b) control++;
  }
  if (control > b.length / 100) return false;
  try {
    // `stream: true` tolerates a multi-byte sequence cut off by the end of the sniffed window.
    new TextDecoder('utf-8', { fatal: true }).decode(b, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

/** True when `mime` is allowed by `accept` (exact types, `type/*` wildcards, or `*` / `*\/*` for anything). */
export function mimeAccepted(mime: string, accept: readonly string[]): boolean {
  const type = mime.split('/')[0];
  return accept.some((a) => {
    const want = a.trim().toLowerCase();
    return want === '*' || want === '*/*' || want === mime || (want.endsWith('/*') && want.slice(0, -2) === type);
  });
}

const FRIENDLY: Record<string, string> = {
  'image/png': 'PNG',
  'image/jpeg': 'JPEG',
  'image/gif': 'GIF',
  'image/webp': 'WEBP',
  'application/pdf': 'PDF',
  'video/mp4': 'MP4',
  'video/quicktime': 'MOV',
  'video/webm': 'WEBM',
  'audio/mpeg': 'MP3',
  'audio/wav': 'WAV',
  'text/plain': 'plain text',
  'text/csv': 'CSV',
  'application/json': 'JSON',
  'text/markdown': 'Markdown',
  'application/zip': 'ZIP',
  [OCTET_STREAM]: 'an unrecognised binary format',
};

/** A short human name for a MIME type, for messages a model reads ("PNG", "PDF", "image/avif"). */
export function describeMime(mime: string): string {
  return FRIENDLY[mime] ?? mime;
}
