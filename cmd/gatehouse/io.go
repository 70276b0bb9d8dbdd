package main

import "io"

// maxInput bounds what the CLI reads from stdin.
const maxInput = 64 << 20

func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err == nil && len(b) > maxInput {
		return nil, usage("too_large", "Max", maxInput)
	}
	return b, err
}
