#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run by `npm pack` and `npm run demo`).
// Checked before anything loads: on an older Node, a dependency would fail
// first with an obscure TypeError instead of this line.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  // In the source checkout the npm scripts run on the Node 24 of the dev
  // dependencies; an installed package has only the Node it was run with.
  const checkout = existsSync(new URL('../src/', import.meta.url));
  const advice = checkout
    ? 'run it through the npm scripts (npm run demo), which bring Node 24, or install a current Node.js'
    : 'install a current Node.js (https://nodejs.org) and run ai-cost with it';
  console.error(`ai-cost: needs Node.js 22 or later, this is ${process.version}: ${advice}`);
  process.exit(1);
}
await import('../dist/cli/main.js');
