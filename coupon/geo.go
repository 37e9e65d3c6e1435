package coupon

import "math"

// EarthRadiusM is the mean Earth radius of SPEC §6.
const EarthRadiusM = 6371008.8

const degToRad = math.Pi / 180

// DistanceM is the haversine great-circle distance in metres.
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	φ1, φ2 := lat1*degToRad, lat2*degToRad
	dφ := φ2 - φ1
	dλ := (lon2 - lon1) * degToRad
	s1 := math.Sin(dφ / 2)
	s2 := math.Sin(dλ / 2)
	h := s1*s1 + math.Cos(φ1)*math.Cos(φ2)*s2*s2
	if h > 1 {
		h = 1
	}
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(h))
}
