package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A system under test, started fresh for every run so that its peak RSS
// belongs to that run alone.
type system struct {
	name  string
	start func() (cmd *exec.Cmd, addr string, err error)
	// paths maps a scenario to the path this system serves it at.
	paths map[string]string
}

func (r *runner) edgeConfig(addr, admin, accessLog string) string {
	return fmt.Sprintf(`[server]
listen = %q
max_conns = 30000
idle_timeout = "300s"
[admin]
listen = %q
[log]
level = "warn"
access_log = %q
access_log_buffer = "256KiB"
access_log_flush = "1s"
[upstreams.up]
servers = [%q]
max_conns_per_server = 256
[[routes]]
path_prefix = "/"
upstream = "up"
[coupon]
source = "redis"
fallback_upstream = ""
[redis]
addrs = [%q]
`, addr, admin, accessLog, r.upstreamAddr, r.redisAddr)
}

func (r *runner) startEdge() (*exec.Cmd, string, error) { return r.startEdgeWith("") }

// edgeGzip is the [compression] table of the "edgeproxy gzip" system: gzip
// only, at the level nginx's location /json/ uses (gzip 6 = "default").
const edgeGzip = `
[compression]
enabled = true
algorithms = ["gzip"]
types = ["application/json"]
min_bytes = 1024
level = "default"
`

func (r *runner) startEdgeGzip() (*exec.Cmd, string, error) { return r.startEdgeWith(edgeGzip) }

// startEdgeWith starts edgeproxy with the bench config plus extra TOML.
func (r *runner) startEdgeWith(extra string) (*exec.Cmd, string, error) {
	addr, admin := freeAddr(), freeAddr()
	cfg := filepath.Join(r.dir, "edge.toml")
	if err := os.WriteFile(cfg, []byte(r.edgeConfig(addr, admin, filepath.Join(r.dir, "edge-access.log"))+extra), 0o644); err != nil {
		return nil, "", err
	}
	cmd, err := r.start(sutCore, []string{"GOMAXPROCS=1"}, r.edgeBin, "-config", cfg)
	if err != nil {
		return nil, "", err
	}
	r.edgeAdmin = admin
	return cmd, addr, waitListening(addr, 10*time.Second)
}

// nginxConfig is what an operator would write for the same job: one
// worker, upstream keep-alive, a buffered access log, and proxy_cache for
// the cached coupon responses.
func (r *runner) nginxConfig(addr string) string {
	d := r.dir
	return fmt.Sprintf(`user root;
worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 30000; }
http {
    log_format main '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_addr $upstream_response_time';
    access_log %[1]s/nginx-access.log main buffer=256k flush=1s;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy_temp;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_max_body_size 8m;
    # Keep request bodies up to 128 KiB in memory, as an operator proxying
    # uploads would; the default (16k) spools the 64 KiB POSTs to disk.
    client_body_buffer_size 128k;
    proxy_cache_path %[1]s/cache keys_zone=coupons:10m;
    upstream up {
        server %[2]s;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen %[3]s backlog=4096;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
        }
        # The compression scenarios: gzip as edgeproxy's [compression]
        # does it (level 6 is edgeproxy's "default" for gzip).
        location /json/ {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            gzip on;
            gzip_types application/json;
            gzip_min_length 1024;
            gzip_comp_level 6;
            gzip_proxied any;
            gzip_vary on;
        }
        location /cached/ {
            proxy_pass http://up/file/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache coupons;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
        }
    }
}
`, d, r.upstreamAddr, addr)
}

func (r *runner) startNginx() (*exec.Cmd, string, error) {
	addr := freeAddr()
	cfg := filepath.Join(r.dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(r.nginxConfig(addr)), 0o644); err != nil {
		return nil, "", err
	}
	cmd, err := r.start(sutCore, nil, nginxBin(), "-c", cfg, "-e", filepath.Join(r.dir, "nginx-error.log"))
	if err != nil {
		return nil, "", err
	}
	return cmd, addr, waitListening(addr, 10*time.Second)
}

func (r *runner) startBare() (*exec.Cmd, string, error) {
	addr := freeAddr()
	cmd, err := r.start(sutCore, []string{"GOMAXPROCS=1"}, r.benchBin, append([]string{"-serve", "bare", addr}, r.bodies...)...)
	if err != nil {
		return nil, "", err
	}
	return cmd, addr, waitListening(addr, 10*time.Second)
}

// prepare starts the upstream and Redis, imports the sample coupons and
// captures the coupon responses the ceiling and nginx's cache answer with.
func (r *runner) prepare() error {
	r.upstreamAddr = "127.0.0.1:1" // none yet: started once the bodies are captured
	r.redisAddr = freeAddr()
	port := r.redisAddr[strings.LastIndexByte(r.redisAddr, ':')+1:]
	if _, err := r.start(loadCore, nil, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir); err != nil {
		return err
	}
	if err := waitListening(r.redisAddr, 10*time.Second); err != nil {
		return err
	}
	cfg := filepath.Join(r.dir, "edge.toml")
	os.WriteFile(cfg, []byte(r.edgeConfig(freeAddr(), freeAddr(), "off")), 0o644)
	imp := exec.Command(r.edgeBin, "coupons", "import", "-config", cfg, filepath.Join(r.s.root, "testdata/coupons.jsonl"))
	if out, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("import: %v\n%s", err, out)
	}

	// The upstream serves the captured bodies too, for nginx's cache.
	edge, addr, err := r.startEdge()
	if err != nil {
		return err
	}
	for i, path := range []string{pathByID, pathNearby} {
		b, err := httpGet("http://" + addr + path)
		if err != nil {
			return err
		}
		f := filepath.Join(r.dir, fmt.Sprintf("body%d.json", i))
		os.WriteFile(f, b, 0o644)
		r.bodies = append(r.bodies, f)
	}
	r.stop(edge)
	r.upstreamAddr = freeAddr()
	if _, err := r.start(loadCore, []string{"GOMAXPROCS=1"}, r.benchBin, append([]string{"-serve", "upstream", r.upstreamAddr}, r.bodies...)...); err != nil {
		return err
	}
	return waitListening(r.upstreamAddr, 10*time.Second)
}

const (
	pathByID   = "/coupons/tky-00001"
	pathNearby = "/coupons/nearby?lat=35.681&lon=139.767&radius_m=700" // about 210 candidates
)
