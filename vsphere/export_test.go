package vsphere

// SetWatchMaxWait shortens a watch's wait for news, for tests; the
// returned function restores it.
func SetWatchMaxWait(seconds int32) func() {
	old := watchMaxWait
	watchMaxWait = seconds
	return func() { watchMaxWait = old }
}
