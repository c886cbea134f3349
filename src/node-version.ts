/**
 * Imported first by the package's entry point: on a Node.js older than 22 a
 * dependency fails later with an obscure TypeError (Promise.withResolvers is
 * not a function), so say what is wrong before anything else runs.
 */
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  throw new Error(`pg-ai-cost needs Node.js 22 or later; this is ${process.version}. Install a current Node.js (https://nodejs.org)`);
}
export {};
