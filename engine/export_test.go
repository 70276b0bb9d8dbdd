package engine

// SetMergeAbove sets mergeAbove for a test and returns what restores it.
func SetMergeAbove(n int) (restore func()) {
	old := mergeAbove
	mergeAbove = n
	return func() { mergeAbove = old }
}
