package coupon

import (
	"math"
	"strconv"

	"github.com/valyala/fasthttp"
)

// NearbyQuery is a parsed /nearby request.
type NearbyQuery struct {
	Lat, Lon float64
	RadiusM  float64
	Limit    int
}

// ParamError is a bad request parameter; its text names the parameter.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Limits are the bounds and defaults of the nearby parameters.
type Limits struct {
	DefaultRadiusM float64
	MaxRadiusM     float64
	DefaultLimit   int
	MaxLimit       int
}

// ParseNearby reads lat, lon, radius_m and limit from query arguments.
func ParseNearby(args *fasthttp.Args, l Limits) (NearbyQuery, *ParamError) {
	q := NearbyQuery{RadiusM: l.DefaultRadiusM, Limit: l.DefaultLimit}
	var err *ParamError
	if q.Lat, err = coordinate(args, "lat", 90); err != nil {
		return q, err
	}
	if q.Lon, err = coordinate(args, "lon", 180); err != nil {
		return q, err
	}
	if v := args.Peek("radius_m"); v != nil {
		r, ok := decimal(v)
		if !ok || r <= 0 || r > l.MaxRadiusM {
			return q, &ParamError{"radius_m", "must be a number greater than 0 and at most " + strconv.FormatFloat(l.MaxRadiusM, 'f', -1, 64)}
		}
		q.RadiusM = r
	}
	if v := args.Peek("limit"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 || n > l.MaxLimit {
			return q, &ParamError{"limit", "must be an integer from 1 to " + strconv.Itoa(l.MaxLimit)}
		}
		q.Limit = n
	}
	return q, nil
}

func coordinate(args *fasthttp.Args, name string, bound float64) (float64, *ParamError) {
	v := args.Peek(name)
	if len(v) == 0 {
		return 0, &ParamError{name, "required"}
	}
	f, ok := decimal(v)
	if !ok {
		return 0, &ParamError{name, "must be a number"}
	}
	if f < -bound || f > bound {
		return 0, &ParamError{name, "must be between " + strconv.Itoa(-int(bound)) + " and " + strconv.Itoa(int(bound))}
	}
	return f, nil
}

// decimal parses a plain decimal number: digits, sign, point, exponent;
// no hex, no underscores, no NaN or Inf.
func decimal(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 64 {
		return 0, false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
