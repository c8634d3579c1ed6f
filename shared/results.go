package shared

import (
	"math/bits"
	"strconv"
)

// AppendScaleMean appends the mean of a scale snapshot as a JSON number
// with exactly two decimals, rounded half away from zero from the exact
// integer quotient ScaleSum / Voters, or null when there are no voters.
func AppendScaleMean(dst []byte, s *Snapshot) []byte {
	if s.Voters == 0 {
		return append(dst, "null"...)
	}
	neg := s.ScaleSum < 0
	abs := uint64(s.ScaleSum)
	if neg {
		abs = -abs // two's complement: correct for math.MinInt64 too
	}
	hi, lo := bits.Mul64(abs, 100)
	if hi >= s.Voters { // quotient would not fit 64 bits; cannot happen for |value| ≤ MaxScaleAbs
		return append(dst, "null"...)
	}
	q, r := bits.Div64(hi, lo, s.Voters)
	if r >= s.Voters-r { // r/voters ≥ 1/2: away from zero
		q++
	}
	if neg && q != 0 {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, q/100, 10)
	dst = append(dst, '.', byte('0'+q%100/10), byte('0'+q%10))
	return dst
}

// ScaleMedian2 returns twice the median of a scale snapshot's values (the
// sum of the two middle values when the count is even, twice the middle one
// when odd), and false when nothing was voted.
func ScaleMedian2(s *Snapshot) (int64, bool) {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	if n == 0 {
		return 0, false
	}
	at := func(k uint64) int64 { // value at 1-based position k
		var cum uint64
		for i, c := range s.Counts {
			cum += c
			if cum >= k {
				return s.ScaleMin + int64(i)
			}
		}
		return s.ScaleMin + int64(len(s.Counts)-1)
	}
	if n%2 == 1 {
		return 2 * at((n+1)/2), true
	}
	return at(n/2) + at(n/2+1), true
}

// AppendScaleMedian appends the median of a scale snapshot as a JSON
// number (an integer, or one ending in .5), or null when nothing was voted.
func AppendScaleMedian(dst []byte, s *Snapshot) []byte {
	m2, ok := ScaleMedian2(s)
	if !ok {
		return append(dst, "null"...)
	}
	if m2%2 == 0 {
		return strconv.AppendInt(dst, m2/2, 10)
	}
	if m2 < 0 {
		dst = append(dst, '-')
		m2 = -m2
	}
	dst = strconv.AppendInt(dst, m2/2, 10)
	return append(dst, ".5"...)
}
