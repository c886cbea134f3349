/**
 * A cost a provider reported in US dollars (OpenRouter's `usage.cost`, a
 * gateway's header) as integer micro-dollars, rounded up like the cost
 * trigger rounds. The decimal digits are read from the number's shortest
 * text form, so 0.0001234 becomes 124 without a float multiplication
 * (0.0001234 * 1e6 is 123.39999999999999 in binary floating point).
 */
export function dollarsToMicros(dollars: number | string): bigint {
  const text = typeof dollars === 'number' ? numberToPlainDecimal(dollars) : dollars.trim();
  const match = /^(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || (match[1] === '' && !match[2])) {
    throw new RangeError(`provided cost must be a non-negative amount of dollars, got ${JSON.stringify(dollars)}`);
  }
  const whole = BigInt(match[1] || '0');
  const fraction = match[2] ?? '';
  const micros = BigInt((fraction + '000000').slice(0, 6));
  const roundUp = /[1-9]/.test(fraction.slice(6)) ? 1n : 0n;
  return whole * 1_000_000n + micros + roundUp;
}

/** 1.2e-7 -> "0.00000012": the exact decimal the number's shortest form stands for. */
function numberToPlainDecimal(value: number): string {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`provided cost must be a non-negative amount of dollars, got ${value}`);
  }
  const [mantissa = '0', exponentText] = String(value).split('e');
  if (exponentText === undefined) return mantissa;
  const exponent = Number(exponentText);
  const [intPart = '0', fracPart = ''] = mantissa.split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exponent;
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}
