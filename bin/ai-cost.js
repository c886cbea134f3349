#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run on install by `prepare`).
// Checked before anything loads: on an older Node, a dependency would fail
// first with an obscure TypeError instead of this line.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(`ai-cost: needs Node.js 22 or later, this is ${process.version}; npm scripts in this package bring Node 24 (npm run demo), or install a current Node`);
  process.exit(1);
}
await import('../dist/cli/main.js');
