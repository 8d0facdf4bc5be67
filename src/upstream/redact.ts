/** Replaces every occurrence of each secret (8 characters or more) in `text` with `[redacted]`. */
export function makeRedactor(secrets: string[]): (text: string) => string {
  const needles = secrets.filter((s) => s.length >= 8);
  return (text) => {
    for (const secret of needles) {
      if (text.includes(secret)) text = text.split(secret).join('[redacted]');
    }
    return text;
  };
}
