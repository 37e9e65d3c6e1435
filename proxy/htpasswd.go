package proxy

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// passwordHash checks a password against one htpasswd entry. Every
// implementation takes the same time for a right and a wrong password.
type passwordHash interface {
	matches(password []byte) bool
	// kind names the format and its cost ("bcrypt-10", "apr1", "sha1"),
	// so that the dummy an unknown user is checked against costs the same.
	kind() string
}

// htpasswd is a loaded user file: users by name, in file order for the
// dummy choice.
type htpasswd struct {
	users map[string]passwordHash
	// dummy is the hash an unknown user's password is checked against:
	// an entry of the file's most common kind, so that an unknown user
	// costs what a known one does. Its result is never trusted.
	dummy passwordHash
}

var errUnsupportedHash = errors.New("unsupported password hash: only bcrypt ($2y$, htpasswd -B), apr1 ($apr1$, htpasswd -m) and SHA1 ({SHA}, htpasswd -s) are accepted; plain text and crypt() are not")

// loadHtpasswd reads an htpasswd file: "user:hash" lines (an nginx-style
// ":comment" after the hash is allowed), blank lines and "#" comments
// skipped. A line in any other format fails the load, naming file and
// line. As in nginx, the first line of a user wins.
func loadHtpasswd(file string) (*htpasswd, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	h := &htpasswd{users: map[string]passwordHash{}}
	counts := map[string]int{}
	best := 0
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		user, hash, err := parseHtpasswdLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", file, n+1, err)
		}
		if _, dup := h.users[user]; dup {
			continue
		}
		h.users[user] = hash
		k := hash.kind()
		counts[k]++
		if counts[k] > best {
			best, h.dummy = counts[k], hash
		}
	}
	if h.dummy == nil {
		// No users: everyone gets 401; still spend a bcrypt check.
		h.dummy = emptyFileDummy
	}
	return h, nil
}

// emptyFileDummy is bcrypt at the default cost of 32 random bytes,
// generated once and thrown away.
var emptyFileDummy passwordHash = bcryptHash("$2a$10$JJcl73YB4bK307sEWkrMWuwu0S1NIYrxgU6jGGqD7W/RldpzGRT1a")

func parseHtpasswdLine(line []byte) (string, passwordHash, error) {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return "", nil, errors.New(`not "user:hash"`)
	}
	user, hash := line[:colon], line[colon+1:]
	if len(user) == 0 {
		return "", nil, errors.New("empty user name")
	}
	if i := bytes.IndexByte(hash, ':'); i >= 0 {
		hash = hash[:i] // nginx's "user:hash:comment"
	}
	h, err := parsePasswordHash(string(hash))
	if err != nil {
		return "", nil, fmt.Errorf("user %q: %w", user, err)
	}
	return string(user), h, nil
}

func parsePasswordHash(s string) (passwordHash, error) {
	switch {
	case strings.HasPrefix(s, "$2y$"), strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, fmt.Errorf("malformed bcrypt hash: %w", err)
		}
		return bcryptHash(s), nil
	case strings.HasPrefix(s, "{SHA}"):
		sum, err := base64.StdEncoding.DecodeString(s[len("{SHA}"):])
		if err != nil || len(sum) != sha1.Size {
			return nil, errors.New("malformed {SHA} hash: want base64 of 20 bytes")
		}
		return sha1Hash(sum), nil
	case strings.HasPrefix(s, apr1Magic):
		return parseApr1(s)
	}
	return nil, errUnsupportedHash
}

// bcryptHash is "$2y$", "$2a$" or "$2b$": bcrypt's own comparison runs
// the full key schedule whatever the password.
type bcryptHash string

func (h bcryptHash) matches(p []byte) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), p) == nil
}

func (h bcryptHash) kind() string {
	cost, _ := bcrypt.Cost([]byte(h))
	return fmt.Sprintf("bcrypt-%d", cost)
}

// sha1Hash is "{SHA}": unsalted SHA-1, weak, accepted as nginx does.
type sha1Hash []byte

func (h sha1Hash) matches(p []byte) bool {
	sum := sha1.Sum(p)
	return subtle.ConstantTimeCompare(sum[:], h) == 1
}

func (sha1Hash) kind() string { return "sha1" }
