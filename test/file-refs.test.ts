import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { delay, http, HttpResponse } from 'msw';
import { describe, expect, test } from 'vitest';
import { createFileRefFetcher, type FileRefFetcherOptions } from '../src/actions/file-fetch.ts';
import { checkFileRefs } from '../src/actions/file-refs.ts';
import { hostMatcher, isForbiddenAddress, pinnedLookup } from '../src/core/net-policy.ts';
import { mimeAccepted, sniffMime } from '../src/actions/sniff.ts';
import { RelayError } from '../src/core/errors.ts';
import { useMockOpenAI } from './helpers/mock-openai.ts';
import { refusal } from './helpers/assertions.ts';

/**
 * Safe fetching of openaiFileIdRefs: MSW plays OpenAI's file host; DNS is injected (public TEST-NET
 * addresses for allowed hosts) so the address checks run without the network.
 */
const { server, upstream } = useMockOpenAI();

const FILES = 'https://files.oaiusercontent.com';
const IMAGES = ['image/png', 'image/jpeg', 'image/webp'];
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const png = (size: number) => Buffer.concat([PNG_MAGIC, randomBytes(size - PNG_MAGIC.length)]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function fetcher(overrides: Partial<FileRefFetcherOptions> & { dns?: Record<string, string[]> } = {}) {
  const { dns = {}, ...rest } = overrides;
  const lookups: string[] = [];
  const f = createFileRefFetcher({
    allowedHosts: ['files.oaiusercontent.com', '*.oaiusercontent.com'],
    maxBytes: 1024 * 1024,
    timeoutMs: 2_000,
    maxRedirects: 3,
    resolve: async (host) => {
      lookups.push(host);
      return dns[host] ?? ['203.0.113.7'];
    },
    ...rest,
  });
  return Object.assign(f, { lookups });
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}


/** A body that never says how long it is, delivered in chunks. */
function chunked(chunks: Buffer[], opts: { hang?: boolean } = {}) {
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const c of chunks) {
        controller.enqueue(new Uint8Array(c));
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!opts.hang) controller.close();
    },
  });
}

describe('happy paths', () => {
  test('a PNG streams through intact with its sniffed type and size', async () => {
    const body = png(300_000);
    server.use(http.get(`${FILES}/file-abc`, () => new HttpResponse(body, { headers: { 'content-type': 'image/png', 'content-length': String(body.length) } })));
    const f = fetcher();
    const file = await f.open({ name: 'cat.png', id: 'file-abc', mime_type: 'image/png', download_link: `${FILES}/file-abc?se=2026&sig=x` }, IMAGES);
    expect(file).toMatchObject({ name: 'cat.png', mimeType: 'image/png', size: body.length });
    expect(sha256(await drain(file.stream))).toBe(sha256(body));
    expect(upstream).toHaveLength(1);
    expect(upstream[0].url.search).toBe('?se=2026&sig=x');
    expect(f.lookups).toEqual(['files.oaiusercontent.com']);
  });

  test('a CSV file is text, typed by its extension, with the untrusted mime_type ignored for binary checks', async () => {
    const csv = Buffer.from('name,score\nÅsa,3\nBo,4\n');
    server.use(http.get(`${FILES}/file-csv`, () => new HttpResponse(csv, { headers: { 'content-type': 'application/octet-stream' } })));
    const file = await fetcher().open({ name: 'scores.csv', mime_type: 'image/png', download_link: `${FILES}/file-csv` }, ['text/*', 'application/json']);
    expect(file.mimeType).toBe('text/csv');
    expect((await drain(file.stream)).toString()).toBe(csv.toString());
  });

  test('a plain text file without an extension is text/plain (the mime_type hint picks a text subtype only)', async () => {
    server.use(http.get(`${FILES}/file-txt`, () => new HttpResponse('{"a": 1}\n')));
    const f = fetcher();
    expect((await f.open({ download_link: `${FILES}/file-txt` }, ['*'])).mimeType).toBe('text/plain');
    expect((await f.open({ download_link: `${FILES}/file-txt`, mime_type: 'application/json' }, ['*'])).mimeType).toBe('application/json');
  });

  test('a redirect to another allowlisted host is followed and checked again', async () => {
    const body = png(5_000);
    server.use(
      http.get(`${FILES}/file-r`, () => new HttpResponse(null, { status: 302, headers: { location: 'https://cdn.oaiusercontent.com/blob/r' } })),
      http.get('https://cdn.oaiusercontent.com/blob/r', () => new HttpResponse(body)),
    );
    const f = fetcher();
    const file = await f.open({ name: 'r.png', download_link: `${FILES}/file-r` }, IMAGES);
    expect(sha256(await drain(file.stream))).toBe(sha256(body));
    expect(upstream.map((r) => r.url.hostname)).toEqual(['files.oaiusercontent.com', 'cdn.oaiusercontent.com']);
    expect(f.lookups).toEqual(['files.oaiusercontent.com', 'cdn.oaiusercontent.com']);
  });
});

describe('links refused before any request', () => {
  const cases: [string, string, RegExp][] = [
    ['plain http', 'http://files.oaiusercontent.com/file-1', /https/],
    ['a host off the allowlist', 'https://attacker.example/file-1', /not an allowed file host/],
    ['an allowlisted name as a prefix of another domain', 'https://evil.oaiusercontent.com.attacker.com/x', /not an allowed file host/],
    ['the bare parent of a wildcard is still allowed only because it is listed exactly', 'https://oaiusercontent.com/x', /not an allowed file host/],
    ['userinfo', 'https://user:pw@files.oaiusercontent.com/x', /user name or password/],
    ['userinfo that hides the real host', 'https://files.oaiusercontent.com@attacker.com/x', /user name or password|not an allowed/],
    ['a port other than 443', 'https://files.oaiusercontent.com:8443/x', /port 8443/],
    ['a trailing dot', 'https://files.oaiusercontent.com./x', /not an allowed file host/],
    ['an IP literal', 'https://203.0.113.7/x', /IP address/],
    ['an IPv6 literal', 'https://[::1]/x', /IP address/],
    ['not a URL', 'files.oaiusercontent.com/x', /not a valid URL/],
  ];
  test.each(cases)('%s → 400', async (_label, link, message) => {
    const f = fetcher();
    const err = await refusal(f.open({ download_link: link }, ['*']));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/attach the file again|exactly as ChatGPT provided/);
    expect(f.lookups).toEqual([]);
    expect(upstream).toHaveLength(0);
  });

  test('port 443 spelled out is the same as no port', async () => {
    server.use(http.get(`${FILES}/file-443`, () => new HttpResponse(png(100))));
    const file = await fetcher().open({ download_link: 'https://FILES.oaiusercontent.com:443/file-443' }, IMAGES);
    expect(file.mimeType).toBe('image/png');
    file.stream.destroy();
  });

  test.each([['10.0.0.1'], ['127.0.0.1'], ['169.254.169.254'], ['100.64.1.1'], ['0.0.0.0'], ['224.0.0.1'], ['::1'], ['::'], ['fe80::1'], ['fd00::1'], ['::ffff:192.168.0.1'], ['::ffff:7f00:1'], ['64:ff9b::a00:1'], ['2002:a00:1::1']])(
    'a DNS answer of %s → refused with zero requests',
    async (address) => {
      const f = fetcher({ dns: { 'files.oaiusercontent.com': ['203.0.113.7', address] } });
      const err = await refusal(f.open({ download_link: `${FILES}/file-1` }, ['*']));
      expect(err.status).toBe(400);
      expect(err.code).toBe('file_host_forbidden');
      expect(err.message).toMatch(/private or internal network address/);
      expect(upstream).toHaveLength(0);
    },
  );

  test('a redirect off the allowlist is refused and not followed', async () => {
    server.use(http.get(`${FILES}/file-x`, () => new HttpResponse(null, { status: 301, headers: { location: 'https://169.254.169.254/latest/meta-data/' } })));
    const err = await refusal(fetcher().open({ download_link: `${FILES}/file-x` }, ['*']));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/redirected the download/);
    expect(upstream).toHaveLength(1);
  });

  test('a redirect to an allowlisted host whose DNS answer is private is refused', async () => {
    server.use(http.get(`${FILES}/file-y`, () => new HttpResponse(null, { status: 307, headers: { location: 'https://internal.oaiusercontent.com/y' } })));
    const f = fetcher({ dns: { 'internal.oaiusercontent.com': ['10.1.2.3'] } });
    const err = await refusal(f.open({ download_link: `${FILES}/file-y` }, ['*']));
    expect(err.code).toBe('file_host_forbidden');
    expect(upstream).toHaveLength(1);
  });

  test('a redirect loop stops at maxRedirects with a 4xx', async () => {
    server.use(http.get(`${FILES}/loop`, () => new HttpResponse(null, { status: 302, headers: { location: '/loop' } })));
    const err = await refusal(fetcher({ maxRedirects: 3 }).open({ download_link: `${FILES}/loop` }, ['*']));
    expect(err.status).toBe(400);
    expect(err.code).toBe('file_too_many_redirects');
    expect(upstream).toHaveLength(4);
  });
});

describe('answers from the file host', () => {
  test.each([[403], [404], [410]])('%i → 4xx telling the model to have the file attached again', async (status) => {
    server.use(http.get(`${FILES}/old`, () => new HttpResponse('<Error>AuthenticationFailed</Error>', { status })));
    const err = await refusal(fetcher().open({ name: 'report.pdf', download_link: `${FILES}/old` }, ['*']));
    expect(err.status).toBe(400);
    expect(err.code).toBe('file_link_expired');
    expect(err.message).toMatch(/expired/);
    expect(err.message).toMatch(/attach the file again/);
  });

  test('a 500 from the host → 502', async () => {
    server.use(http.get(`${FILES}/boom`, () => new HttpResponse('no', { status: 500 })));
    const err = await refusal(fetcher().open({ download_link: `${FILES}/boom` }, ['*']));
    expect(err.status).toBe(502);
  });

  test('a Content-Length over the cap → 413 before reading', async () => {
    const body = png(4096);
    server.use(http.get(`${FILES}/big`, () => new HttpResponse(body, { headers: { 'content-length': String(body.length) } })));
    const err = await refusal(fetcher({ maxBytes: 1000 }).open({ name: 'big.png', download_link: `${FILES}/big` }, IMAGES));
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/limit/);
  });

  test('a body over the cap without Content-Length: the stream errors with 413 as it flows', async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => (i === 0 ? png(16 * 1024) : randomBytes(16 * 1024)));
    server.use(http.get(`${FILES}/sneaky`, () => new HttpResponse(chunked(chunks))));
    const file = await fetcher({ maxBytes: 100 * 1024 }).open({ name: 'sneaky.png', download_link: `${FILES}/sneaky` }, IMAGES);
    expect(file.size).toBeUndefined();
    const err = await drain(file.stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).status).toBe(413);
  });

  test('the sniffed type decides: a PDF named .png where images are accepted → 415', async () => {
    server.use(http.get(`${FILES}/fake`, () => new HttpResponse(Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n'), { headers: { 'content-type': 'image/png' } })));
    const err = await refusal(fetcher().open({ name: 'photo.png', mime_type: 'image/png', download_link: `${FILES}/fake` }, IMAGES));
    expect(err.status).toBe(415);
    expect(err.message).toMatch(/PDF/);
    expect(err.message).toMatch(/PNG, JPEG, WEBP/);
  });

  test('a host that never answers → 408 within timeoutMs', async () => {
    server.use(
      http.get(`${FILES}/slow`, async () => {
        await delay('infinite');
        return new HttpResponse('late');
      }),
    );
    const started = Date.now();
    const err = await refusal(fetcher({ timeoutMs: 200 }).open({ name: 'slow.png', download_link: `${FILES}/slow` }, ['*']));
    expect(err.status).toBe(408);
    expect(err.message).toMatch(/took longer than 0.2 s/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('a body that stalls after the first bytes: the stream is destroyed with 408', async () => {
    server.use(http.get(`${FILES}/stall`, () => new HttpResponse(chunked([png(10_000)], { hang: true }))));
    const file = await fetcher({ timeoutMs: 300 }).open({ name: 'stall.png', download_link: `${FILES}/stall` }, IMAGES);
    const err = await drain(file.stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as RelayError).status).toBe(408);
    expect((err as RelayError).message).toMatch(/stopped sending/);
  });
});

describe('checkFileRefs', () => {
  const ref = { name: 'a.png', id: 'file-1', mime_type: 'image/png', download_link: `${FILES}/file-1` };

  test('accepts up to 10 refs and keeps their fields', () => {
    expect(checkFileRefs(Array(10).fill(ref))).toHaveLength(10);
    expect(checkFileRefs([ref])[0]).toEqual(ref);
    expect(checkFileRefs([{ ...ref, mime_type: null }])[0]).toEqual({ name: 'a.png', id: 'file-1', download_link: ref.download_link });
  });

  test('more than 10 → 400', () => {
    const err = (() => {
      try {
        checkFileRefs(Array(11).fill(ref));
      } catch (e) {
        return e as RelayError;
      }
    })();
    expect(err).toBeInstanceOf(RelayError);
    expect(err!.status).toBe(400);
    expect(err!.message).toMatch(/at most 10/);
  });

  test.each([[undefined], ['file-1'], [{}], [[{ name: 'x' }]], [['file-abc']], [[{ download_link: 42 }]], [[{ download_link: 'https://x', name: 3 }]], [[null]]])('bad shape %j → 400', (refs) => {
    expect(() => checkFileRefs(refs)).toThrow(RelayError);
    try {
      checkFileRefs(refs);
    } catch (e) {
      expect((e as RelayError).status).toBe(400);
      expect((e as RelayError).param).toMatch(/^openaiFileIdRefs/);
    }
  });
});

describe('building blocks', () => {
  test('host matching: exact names exactly, wildcards for subdomains only', () => {
    const m = hostMatcher(['files.oaiusercontent.com', '*.example.com', 'EXACT.org.']);
    expect(m('files.oaiusercontent.com')).toBe(true);
    expect(m('x.files.oaiusercontent.com')).toBe(false);
    expect(m('a.example.com')).toBe(true);
    expect(m('a.b.example.com')).toBe(true);
    expect(m('example.com')).toBe(false);
    expect(m('badexample.com')).toBe(false);
    expect(m('exact.org')).toBe(true);
    expect(m('exact.org.')).toBe(false);
  });

  test('address classification', () => {
    for (const ok of ['203.0.113.7', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8', '2002:808:808::1']) expect(isForbiddenAddress(ok), ok).toBe(false);
    for (const bad of ['192.168.1.1', '172.31.255.255', '255.255.255.255', 'fe80::1%eth0', 'ff02::1', '::ffff:0:10.0.0.1', 'not-an-ip', '2001::1'])
      expect(isForbiddenAddress(bad), bad).toBe(true);
  });

  test('the pinned lookup answers only with the checked addresses, in both callback forms', () => {
    const lookup = pinnedLookup('files.oaiusercontent.com', ['203.0.113.7', '2001:db8::7']);
    const seen: unknown[] = [];
    lookup('files.oaiusercontent.com', { all: true }, (err, address) => seen.push(err, address));
    lookup('files.oaiusercontent.com', { family: 6 }, (err, address, family) => seen.push(err, address, family));
    lookup('evil.example', {}, (err) => seen.push((err as NodeJS.ErrnoException).code));
    expect(seen).toEqual([
      null,
      [
        { address: '203.0.113.7', family: 4 },
        { address: '2001:db8::7', family: 6 },
      ],
      null,
      '2001:db8::7',
      6,
      'ENOTFOUND',
    ]);
  });

  test('sniffing', () => {
    const cases: [Buffer, string, string?][] = [
      [png(64), 'image/png'],
      [Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), 'image/jpeg'],
      [Buffer.from('GIF89a....'), 'image/gif'],
      [Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 '), 'image/webp'],
      [Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt '), 'audio/wav'],
      [Buffer.from('%PDF-1.4\n'), 'application/pdf'],
      [Buffer.from('\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00', 'latin1'), 'video/mp4'],
      [Buffer.from('\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00', 'latin1'), 'video/quicktime'],
      [Buffer.from('\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm', 'latin1'), 'video/webm'],
      [Buffer.from('ID3\x04\x00'), 'audio/mpeg'],
      [Buffer.from([0xff, 0xfb, 0x90, 0x64]), 'audio/mpeg'],
      [Buffer.from('PK\x03\x04\x14\x00'), 'application/zip'],
      [Buffer.from('PK\x03\x04\x14\x00'), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'letter.docx'],
      [Buffer.from('# Title\n'), 'text/markdown', 'notes.md'],
      [Buffer.from('[1,2]'), 'application/json', 'data.json'],
      [Buffer.from('hello\n'), 'text/plain', 'hello.exe'],
      [Buffer.from([0x68, 0x00, 0x69]), 'application/octet-stream'],
      [Buffer.from([0xc3, 0x28, 0x41]), 'application/octet-stream'],
    ];
    for (const [bytes, mime, name] of cases) expect(sniffMime(bytes, { name, complete: true }), mime).toBe(mime);
    // A multi-byte character cut by the sniff window is not a reason to call text binary.
    expect(sniffMime(Buffer.from('abc\u00e5').subarray(0, 4), { complete: false })).toBe('text/plain');
    expect(mimeAccepted('image/png', ['image/*'])).toBe(true);
    expect(mimeAccepted('application/pdf', ['image/*'])).toBe(false);
    expect(mimeAccepted('application/pdf', ['*'])).toBe(true);
  });
});
