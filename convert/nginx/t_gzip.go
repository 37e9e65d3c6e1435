package nginx

import "strconv"

func carryGzip(s *scope, d *Directive) error {
	on, err := onOff(s, d)
	if err != nil {
		return err
	}
	s.set.gzip.put(on, d)
	return nil
}

func carryGzipTypes(s *scope, d *Directive) error {
	types := []string{"text/html"}
	for _, t := range d.Args {
		if t == "*" {
			types = []string{"*/*"}
			break
		}
		if t != "text/html" {
			types = append(types, t)
		}
	}
	s.set.gzipTypes.put(types, d)
	return nil
}

func carryGzipMinLength(s *scope, d *Directive) error {
	n, ok := nginxSize(d.Args[0])
	if !ok {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return errReported
	}
	s.set.gzipMinLength.put(int(n), d)
	return nil
}

func carryGzipLevel(s *scope, d *Directive) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 1 || n > 9 {
		s.c.reject(d, "invalid value %q", d.Args[0])
		return errReported
	}
	level := "default"
	switch {
	case n <= 3:
		level = "fastest"
	case n >= 7:
		level = "best"
	}
	s.set.gzipLevel.put(level, d)
	return nil
}

func carryGzipProxied(s *scope, d *Directive) error {
	if len(d.Args) == 1 && d.Args[0] == "any" {
		return nil
	}
	return blocking("edgeproxy compresses answers to requests with Via as to any other; only `gzip_proxied any` is carried")
}
