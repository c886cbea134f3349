/**
 * Exact decimal strings from JSON numbers. LiteLLM lists USD per token
 * (2.5e-06); pg-ai-cost stores USD per million tokens (2.5). Multiplying the
 * float by 1e6 would give 2.4999999999999996, so the shortest decimal the
 * number prints as is shifted by six places instead, digit by digit.
 */

/** The number as a plain decimal string, without exponent: 1e-7 is "0.0000001". */
export function toDecimalString(value: number): string {
  return shiftDecimal(value, 0);
}

/** USD per token as USD per 1M tokens, exactly: 2.5e-6 is "2.5". */
export function perTokenToPerMillion(value: number): string {
  return shiftDecimal(value, 6);
}

function shiftDecimal(value: number, places: number): string {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`not a non-negative finite number: ${value}`);
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (!match) throw new RangeError(`cannot read ${value} as a decimal`);
  const [, whole, fraction = '', exponent = '0'] = match;
  const digits = whole! + fraction;
  // Position of the decimal point within `digits` after the shift.
  const point = whole!.length + Number(exponent) + places;
  const padded = point <= 0 ? '0'.repeat(1 - point) + digits : digits.padEnd(point, '0');
  const at = Math.max(point, 1);
  const intPart = padded.slice(0, at).replace(/^0+(?=\d)/, '');
  const fracPart = padded.slice(at).replace(/0+$/, '');
  return fracPart ? `${intPart}.${fracPart}` : intPart;
}
