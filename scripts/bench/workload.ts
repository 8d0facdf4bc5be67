import http from 'node:http';

/** What the benchmark sends: the keys the relay is started with and the request bodies. */

export const RELAY_KEY = 'bench-relay-key-0123456789abcdef';
export const OPENAI_KEY = 'sk-bench-not-a-real-key-00000000';
export const AUTH = `Bearer ${RELAY_KEY}`;
/** A ~1 KB embeddings request, like a paragraph of text to embed. */
export const EMBEDDINGS_BODY = JSON.stringify({
  model: 'text-embedding-3-small',
  input: 'The quick brown fox jumps over the lazy dog. '.repeat(21).trim(),
  encoding_format: 'float',
});
export const SSE_BODY = JSON.stringify({ model: 'gpt-4.1-mini', input: 'Say hello.', stream: true });

/** What a relay under test starts with: its keys, the mock as OpenAI, loopback only. */
export function relayBaseEnv(upstream: string, port: number, logLevel: string): Record<string, string> {
  return { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, OPENAI_BASE_URL: `${upstream}/v1`, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: logLevel };
}

/** One embeddings request on a fresh connection; rejects unless it is answered 200. */
export function embeddingOnce(url: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(`${url}/v1/embeddings`, {
      method: 'POST',
      agent: false,
      timeout: 10_000,
      headers: { authorization: AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(EMBEDDINGS_BODY) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolvePromise(200) : reject(new Error(`${url}/v1/embeddings answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('embeddings request timed out')));
    req.on('error', reject);
    req.end(EMBEDDINGS_BODY);
  });
}
