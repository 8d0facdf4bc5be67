import { z } from 'zod';

/** The field parsers the environment schema is built from: each fails with a sentence naming the setting. */

export const MB = 1024 * 1024;

export const commaList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

export const positiveInt = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value <= 0) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number above 0 (got "${raw}").` });
        return z.NEVER;
      }
      return value;
    });

/** A whole number from `min` to `max` (`minLabel` names the lowest, e.g. "0 (off)"). */
export const intInRange = (name: string, fallback: number, min: number, max: number, minLabel = String(min)) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${minLabel} to ${max} (got "${raw}").` });
        return z.NEVER;
      }
      return value;
    });

export const urlWithScheme = (name: string, schemes: string[]) =>
  z.string().transform((raw, ctx) => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `${name} must be an absolute URL such as https://example.com (got "${raw}").` });
      return z.NEVER;
    }
    if (!schemes.includes(url.protocol)) {
      ctx.addIssue({ code: 'custom', message: `${name} must start with ${schemes.map((s) => s + '//').join(' or ')} (got "${raw}").` });
      return z.NEVER;
    }
    return url;
  });

/** An optional setting for which an empty value (`BLOB_S3_BUCKET=` in a compose file) means "not set". */
export const blankAsUnset = <T extends z.ZodType>(schema: T) => z.preprocess((raw) => (typeof raw === 'string' && raw.trim() === '' ? undefined : raw), schema.optional());
