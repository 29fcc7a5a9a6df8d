//go:build !race

package seccomp

const raceBuild = false
