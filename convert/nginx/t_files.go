package nginx

import "strings"

func carryRoot(s *scope, d *Directive) error {
	if strings.Contains(d.Args[0], "$") {
		return blocking("root with variables is not translated")
	}
	s.set.root.put(s.c.path(d.Args[0]), d)
	return nil
}

// carryAlias: `location /static/ { alias /srv/app/static/; }` is root
// /srv/app; other aliases have no root equivalent.
func carryAlias(s *scope, d *Directive) error {
	a := d.Args[0]
	p := s.loc.path
	if s.loc.kind == locRegex || s.loc.kind == locNamed || !strings.HasSuffix(a, p) || strings.Contains(a, "$") {
		return blocking("alias %q is not the location path %q under a folder, so no root expresses it", a, p)
	}
	s.set.root.put(s.c.path(strings.TrimSuffix(a, p)), d)
	return nil
}

func carryIndex(s *scope, d *Directive) error {
	s.set.index.put(append([]string(nil), d.Args...), d)
	return nil
}

func carryTryFiles(s *scope, d *Directive) error {
	for _, a := range d.Args {
		if strings.HasPrefix(a, "=") {
			return blocking("try_files ending in =CODE is not translated")
		}
		if err := checkVars(a); err != nil {
			return err
		}
	}
	s.set.tryFiles.put(append([]string(nil), d.Args...), d)
	return nil
}
