package enginetest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// BenchUsers returns the numbers of users the write benchmarks of the
// service and HTTP packages generate: GATEHOUSE_BENCH_USERS, a
// comma-separated list such as "10000,1000000", or 10,000 and 100,000. A
// malformed list panics, naming the variable: a benchmark must not
// silently measure other sizes than asked.
func BenchUsers() []int {
	v := os.Getenv("GATEHOUSE_BENCH_USERS")
	if v == "" {
		return []int{10_000, 100_000}
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			panic(fmt.Sprintf("GATEHOUSE_BENCH_USERS=%q: want a comma-separated list of user counts of at least 10", v))
		}
		out = append(out, n)
	}
	return out
}

// SizeName names a number of users in a benchmark: "10k", "1M".
func SizeName(users int) string {
	switch {
	case users >= 1_000_000 && users%1_000_000 == 0:
		return fmt.Sprintf("%dM", users/1_000_000)
	case users >= 1000 && users%1000 == 0:
		return fmt.Sprintf("%dk", users/1000)
	}
	return strconv.Itoa(users)
}
