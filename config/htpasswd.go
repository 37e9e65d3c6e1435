package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
)

// checkHtpasswd reads an htpasswd file and checks each line's format, so
// that -t and a reload refuse a file the proxy could not load: "user:hash"
// (an nginx ":comment" may follow), with a bcrypt, apr1 or {SHA} hash.
// The proxy parses the hashes themselves when the route compiles.
func checkHtpasswd(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return pathCause(err)
	}
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		user, hash, found := bytes.Cut(line, []byte(":"))
		if !found || len(user) == 0 {
			return fmt.Errorf("line %d: not \"user:hash\"", n+1)
		}
		hash, _, _ = bytes.Cut(hash, []byte(":"))
		if !htpasswdHash(hash) {
			return fmt.Errorf("line %d: user %q: unsupported or malformed password hash; use bcrypt (htpasswd -B), apr1 (htpasswd -m) or SHA1 (htpasswd -s), not plain text or crypt()", n+1, user)
		}
	}
	return nil
}

var (
	bcryptFormat = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)
	apr1Format   = regexp.MustCompile(`^\$apr1\$[^$]{1,8}\$[./A-Za-z0-9]{22}$`)
)

func htpasswdHash(h []byte) bool {
	if sum, ok := bytes.CutPrefix(h, []byte("{SHA}")); ok {
		b, err := base64.StdEncoding.DecodeString(string(sum))
		return err == nil && len(b) == 20
	}
	if bcryptFormat.Match(h) {
		cost := int(h[4]-'0')*10 + int(h[5]-'0')
		return cost >= 4 && cost <= 31 // bcrypt's own bounds
	}
	return apr1Format.Match(h)
}
