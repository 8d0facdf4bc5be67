/** A parsed JSON object (not null, not an array): what a JSON body or argument list must be. */
export function isObj(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
