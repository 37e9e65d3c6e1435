// Package coupon owns the coupon domain: validating coupon JSON (SPEC §5),
// geohash cells and the set of cells covering a circle, great-circle
// distances, validity at request time, ordering, and rendering the API of
// SPEC §6. It declares the Store it reads from; package cache implements it
// over bigcache and rueidis, and FileStore serves a read-only JSONL file.
//
// Rules: the stored JSON of a coupon is returned byte for byte (nearby adds
// "distance_m"); validity is decided per request, never cached; the handler
// never keeps a *fasthttp.RequestCtx or its bytes after returning.
package coupon
