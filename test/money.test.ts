import test from 'ava';
import { formatCost, formatMicros } from '../src/money.js';

const cases: Array<[bigint | null, string]> = [
  [null, 'unpriced'],
  [0n, '$0.00'],
  [1n, '$0.000001'],
  [123n, '$0.000123'],
  [12_345n, '$0.01235'],
  [684_843n, '$0.6848'],
  [999_999n, '$1.00'],
  [1_000_000n, '$1.00'],
  [1_234_567_891n, '$1,234.57'],
  [15_434_999n, '$15.43'],
  [-2_500_000n, '-$2.50'],
  [9_223_372_036_854_775_807n, '$9,223,372,036,854.78'],
];

for (const [micros, shown] of cases) {
  test(`formatMicros(${micros}) is ${shown}`, (t) => {
    t.is(formatMicros(micros), shown);
  });
}

const costs: Array<[bigint | null, bigint, string]> = [
  [null, 3n, 'unpriced'],
  [0n, 0n, '$0.00'],
  [0n, 2n, '$0.00 + 2 unpriced'],
  [33_310n, 0n, '$0.03331'],
  [1_200_000n, 1_234n, '$1.20 + 1,234 unpriced'],
];

for (const [micros, unpriced, shown] of costs) {
  test(`formatCost(${micros}, ${unpriced} unpriced) is ${shown}`, (t) => {
    t.is(formatCost(micros, unpriced), shown);
  });
}
