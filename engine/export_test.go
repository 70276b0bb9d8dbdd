package engine

// SetMergeAbove sets mergeAbove for a test and returns what restores it.
func SetMergeAbove(n int) (restore func()) {
	old := mergeAbove
	mergeAbove = n
	return func() { mergeAbove = old }
}

// SetPlaceUsers sets placeUsers for a test and returns what restores it.
func SetPlaceUsers(on bool) (restore func()) {
	old := placeUsers
	placeUsers = on
	return func() { placeUsers = old }
}
