import { DOCUMENTED_SECRETS } from '../../generated/documented-secrets.ts';

/**
 * Keys that cannot be real secrets: the ones the documentation prints (README.md, docs/, .env.example,
 * render.yaml: anyone who has read them knows them; the list is derived by `npm run generate`, so it
 * ships with the code), and placeholder shapes such as `sk-...` or `<your key>`.
 */

/** Why `value` cannot be a real secret, as the end of a sentence naming the variable; undefined if it can be. */
export function placeholderReason(value: string): string | undefined {
  const file = DOCUMENTED_SECRETS.get(value);
  if (file !== undefined) return `is the example value printed in ${file}`;
  if (/\.\.\.|…|[<>]/.test(value)) return 'is a placeholder (it contains "...", "…", "<" or ">")';
  return undefined;
}

const OWN_SECRET = 'Replace it with a secret of your own, e.g. the output of `openssl rand -hex 32`.';

/** A sentence for each configured secret that is an example or a placeholder; the values are never repeated. */
export function exampleKeyProblems(
  env: { OPENAI_API_KEY?: string; RELAY_ADMIN_KEY?: string; BLOB_LINK_SECRET?: string },
  relayKeys: { label: string; key: string }[],
): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  const openai = env.OPENAI_API_KEY ? placeholderReason(env.OPENAI_API_KEY.trim()) : undefined;
  if (openai) {
    problems.push({
      variable: 'OPENAI_API_KEY',
      message: `OPENAI_API_KEY ${openai}, not a real key: set it to your OpenAI API key (https://platform.openai.com/api-keys).`,
    });
  }
  for (const { label, key } of relayKeys) {
    const reason = placeholderReason(key);
    if (reason) problems.push({ variable: 'RELAY_KEY', message: `RELAY_KEY entry "${label}" ${reason}: anyone who has read it could use this relay. ${OWN_SECRET}` });
  }
  for (const variable of ['RELAY_ADMIN_KEY', 'BLOB_LINK_SECRET'] as const) {
    const reason = env[variable] ? placeholderReason(env[variable].trim()) : undefined;
    if (reason) problems.push({ variable, message: `${variable} ${reason}: anyone who has read it could use it. ${OWN_SECRET}` });
  }
  return problems;
}
