/** Integer micro-dollars: 1 = $0.000001. Money stays in this unit until it is displayed. */
export type Micros = bigint;

const MICROS_PER_DOLLAR = 1_000_000n;

/**
 * Formats micro-dollars as dollars for display, without ever going through a
 * float. A dollar or more shows cents ($1,234.57); less than a dollar keeps
 * four significant digits ($0.6848, $0.000123), since a single call often
 * costs a fraction of a cent. NULL (unpriced) is shown as such, never as $0.
 */
export function formatMicros(micros: Micros | null | undefined): string {
  if (micros === null || micros === undefined) return 'unpriced';
  const sign = micros < 0n ? '-' : '';
  const abs = micros < 0n ? -micros : micros;
  if (abs === 0n) return '$0.00';
  if (abs >= MICROS_PER_DOLLAR) {
    const cents = roundHalfUp(abs, 10_000n);
    return `${sign}$${(cents / 100n).toLocaleString('en-US')}.${(cents % 100n).toString().padStart(2, '0')}`;
  }
  // Keep four significant digits: drop (digits - 4) trailing micro digits.
  const dropped = Math.max(0, abs.toString().length - 4);
  const unit = 10n ** BigInt(dropped);
  const kept = roundHalfUp(abs, unit) * unit;
  const fraction = kept.toString().padStart(6, '0').replace(/0+$/, '');
  return kept >= MICROS_PER_DOLLAR ? `${sign}$1.00` : `${sign}$0.${fraction}`;
}

/** Dollars to the micro-dollar, e.g. $1,234.567891, for figures a reader reconciles; "unpriced" for null. */
export function formatExactDollars(micros: Micros | null): string {
  if (micros === null) return 'unpriced';
  const abs = micros < 0n ? -micros : micros;
  return `${micros < 0n ? '-' : ''}$${(abs / MICROS_PER_DOLLAR).toLocaleString('en-US')}.${(abs % MICROS_PER_DOLLAR).toString().padStart(6, '0')}`;
}

/**
 * A figure some of whose calls have no amount (unpriced, not billed), as
 * "≥ $x": at least what the others add up to. `format` shows the amount:
 * formatMicros, or formatExactDollars where figures are reconciled. A null
 * figure (no call has an amount) is shown by `format` alone.
 */
export function formatAtLeast(micros: Micros | null, missingCalls: bigint,
  format: (micros: Micros | null) => string = formatMicros): string {
  return micros !== null && missingCalls > 0n ? `≥ ${format(micros)}` : format(micros);
}

function roundHalfUp(value: bigint, unit: bigint): bigint {
  return (value + unit / 2n) / unit;
}

/**
 * A figure over calls some of which may have no price: the priced sum, with
 * the unpriced calls beside it ("$1.20 + 3 unpriced"), or "unpriced" when
 * none of them is priced (null). A figure with no calls is 0, shown as $0.00.
 */
export function formatCost(micros: Micros | null, unpricedCalls: bigint): string {
  if (micros === null) return 'unpriced';
  return unpricedCalls > 0n ? `${formatMicros(micros)} + ${unpricedCalls.toLocaleString('en-US')} unpriced` : formatMicros(micros);
}
