/** Integer money arithmetic. No floats touch an amount. */

/**
 * numerator / denominator rounded to the nearest integer, ties to even
 * (banker's rounding). Denominator must be positive; numerator may be negative.
 */
export function divRoundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new Error(`divRoundHalfEven: denominator must be positive, got ${denominator}`);
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  let q = n / denominator;
  const twiceRemainder = (n % denominator) * 2n;
  if (twiceRemainder > denominator || (twiceRemainder === denominator && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}
