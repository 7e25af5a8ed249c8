package test

import "sort"

func sortSlice[T any](xs []T, less func(i, j int) bool) { sort.SliceStable(xs, less) }
