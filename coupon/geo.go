package coupon

import "math"

// EarthRadiusM is the mean Earth radius of SPEC §6.
const EarthRadiusM = 6371008.8

const degToRad = math.Pi / 180

// DistanceM is the haversine great-circle distance in metres.
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	φ1, φ2 := lat1*degToRad, lat2*degToRad
	return havMeters(hav(φ1, math.Cos(φ1), φ2, math.Cos(φ2), lon2-lon1))
}

// hav is the haversine of the central angle between two points, from their
// latitudes in radians, the cosines of those, and the longitude difference
// in degrees. Distances order as hav does, so a search compares hav values
// and takes the arcsine only for the coupons it returns.
func hav(φ1, cosφ1, φ2, cosφ2, dLonDeg float64) float64 {
	s1 := math.Sin((φ2 - φ1) / 2)
	s2 := math.Sin(dLonDeg * degToRad / 2)
	return min(s1*s1+cosφ1*cosφ2*s2*s2, 1)
}

// havMeters turns a hav value into metres.
func havMeters(h float64) float64 { return 2 * EarthRadiusM * math.Asin(math.Sqrt(h)) }
