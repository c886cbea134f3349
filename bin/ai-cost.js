#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run on install by `prepare`).
import '../dist/cli/main.js';
