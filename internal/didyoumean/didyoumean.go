// Package didyoumean suggests the known word closest to a mistyped one.
package didyoumean

import "fmt"

// Suggest returns ` (did you mean "x"?)` for the word of known closest to w
// within an edit distance of 2, or "" when none is that close.
func Suggest(w string, known []string) string {
	if best := Closest(w, known); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// Closest returns the word of known closest to w within an edit distance
// of 2 (the first of equals), or "".
func Closest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := Distance(w, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
