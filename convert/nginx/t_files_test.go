package nginx

import (
	"reflect"
	"strings"
	"testing"
)

func TestRootTryFilesIndexExpires(t *testing.T) {
	www := t.TempDir()
	c := convertSnippet(t, `server { listen 80; root `+www+`; index index.html index.htm;
  location / { try_files $uri $uri/ /index.html; }
  location /assets/ { expires 30d; }
  location /api/ { proxy_pass http://127.0.0.1:9001; } }`, AllCaps())
	c.noBlocking(t)
	spa := c.route(t, 0)
	if spa["root"] != www || !reflect.DeepEqual(spa["try_files"], []any{"$uri", "$uri/", "/index.html"}) ||
		!reflect.DeepEqual(spa["index"], []any{"index.html", "index.htm"}) {
		t.Fatalf("route %v", spa)
	}
	if a := c.route(t, 1); a["expires"] != "720h" {
		t.Fatalf("route %v", a)
	}
}

func TestAliasUnderTheLocationPathIsARoot(t *testing.T) {
	app := t.TempDir()
	c := convertSnippet(t, `server { listen 80; location /static/ { alias `+app+`/static/; } location /img/ { alias /data/pictures/; } }`, AllCaps())
	if r := c.route(t, 0); r["root"] != app {
		t.Fatalf("route %v", r)
	}
	if !strings.Contains(c.finding("alias", 3), "no root expresses it") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestRootWithoutFileRoutesIsNotReported(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; root /srv/www; location / { proxy_pass http://127.0.0.1:9001; } }`, Caps{})
	if f := c.finding("root", 3); f != "" {
		t.Fatalf("root only matters for file routes: %s", f)
	}
}

func TestFileRouteWaitsForRoot(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { root /srv/www; } }`, Caps{})
	if !strings.Contains(c.finding("location", 3), "routes.root") {
		t.Fatalf("findings %v", c.findings)
	}
}

func TestRootThatIsNotHereIsBlocking(t *testing.T) {
	c := convertSnippet(t, `server { listen 80; location / { root /nonexistent/www; } }`, AllCaps())
	if !strings.Contains(c.finding("location", 3), "not a folder here") || len(c.routes()) != 0 {
		t.Fatalf("findings %v", c.findings)
	}
}
