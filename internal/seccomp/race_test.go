//go:build race

package seccomp

// The race detector's runtime opens files in every new thread, with its
// signals blocked, so a filter kills it unreported: make unit runs this
// package's tests once more without -race.
const raceBuild = true
