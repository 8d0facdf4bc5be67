// `npm start`, the Docker image and the Render blueprint run this file. It is plain JavaScript on
// purpose: it must load on any Node to say which Node the relay needs. The relay itself (TypeScript,
// run by Node's built-in type stripping) is loaded only on a Node that strips types without flags:
// 22.18 and later 22s, 23.6 and later (package.json's engines says the same).

const version = process.versions.node;
const [major, minor] = version.split('.').map(Number);
const stripsTypes = major === 22 ? minor >= 18 : major === 23 ? minor >= 6 : major > 23;

if (!stripsTypes) {
  console.error(
    `The relay needs Node.js 22.18 or later and this is Node ${version}: install Node 24 (https://nodejs.org/en/download), ` +
      'or install with a plain `npm ci` (not --omit=dev), which puts Node 24 in node_modules/.bin for `npm start`.',
  );
  process.exit(1);
}
await import('./main.ts');
