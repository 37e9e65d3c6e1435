package proxy

import "math/rand/v2"

// pickRendezvous is balance = "hash": each key goes to the usable server
// with the highest score for (key, server). A server that leaves, or is
// down, moves only the keys it had; one that joins takes about 1/N of
// them; shares are even (rendezvous hashing, Thaler and Ravishankar).
func pickRendezvous(set *serverSet, key uint64, usable func(int) bool) int {
	best, bestScore := -1, uint64(0)
	for i, s := range set.servers {
		if !usable(i) {
			continue
		}
		if score := mix64(key ^ s.id); best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// mix64 is SplitMix64's finaliser: a good spread from a cheap xor.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// pickRandomTwo is balance = "random_two": of two usable servers drawn at
// random, the one with fewer requests in flight (the power of two
// choices: nearly least_conn's balance without scanning every server).
func pickRandomTwo(set *serverSet, usable func(int) bool) int {
	n := len(set.servers)
	a, b := -1, -1
	for tries := 0; tries < 2*n && b < 0; tries++ {
		i := rand.IntN(n)
		switch {
		case !usable(i) || i == a:
		case a < 0:
			a = i
		default:
			b = i
		}
	}
	if a < 0 {
		for i := 0; i < n; i++ { // few usable left: take any
			if usable(i) {
				return i
			}
		}
		return -1
	}
	if b < 0 || set.servers[a].inflight.Load() <= set.servers[b].inflight.Load() {
		return a
	}
	return b
}

// hashOf is the FNV-1a hash of a hash_key's value.
func hashOf(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// keyOf is the request's hash_key hashed; 0 unless balance = "hash".
func (u *upstream) keyOf(ex *exchange) uint64 {
	if u.hashKey == nil {
		return 0
	}
	ex.scratch = u.hashKey.Append(ex.scratch[:0], ex)
	return hashOf(ex.scratch)
}
