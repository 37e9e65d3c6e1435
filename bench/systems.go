package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeproxy/edgeproxy/internal/benchdata"
)

// A system under test, started fresh for every run so that its peak RSS
// belongs to that run alone.
type system struct {
	name string
	// start starts the system; data names the coupon data set (a Redis
	// key prefix) where the system reads Redis.
	start func(data string) (cmd *exec.Cmd, addr string, err error)
	// paths maps a scenario to the path this system serves it at.
	paths map[string]string
}

// Coupon data sets: the bundled sample, and the dense set of the mixed
// nearby scenario (internal/benchdata), apart in Redis by key prefix.
const (
	dataSample = "coupon"
	dataDense  = "dense"
)

func (r *runner) gomaxprocs() string { return fmt.Sprintf("GOMAXPROCS=%d", r.s.cores) }

func (r *runner) edgeConfig(addr, admin, accessLog, data string) string {
	return fmt.Sprintf(`[server]
listen = %q
max_conns = 120000
idle_timeout = "300s"
%s[admin]
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
key_prefix = %q
# A dense cell is a ~700 KB HGETALL: on a busy shared host it can take
# longer than the default timeout to read.
command_timeout = "5s"
`, addr, r.edgeServerExtra, admin, accessLog, r.upstreamAddr, r.redisAddr, data)
}

func (r *runner) startEdge(data string) (*exec.Cmd, string, error) { return r.startEdgeWith(data, "") }

// startBaseline is startEdge with -baseline's binary.
func (r *runner) startBaseline(data string) (*exec.Cmd, string, error) {
	return r.startEdgeBin(r.s.baseline, data, "")
}

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

func (r *runner) startEdgeGzip(data string) (*exec.Cmd, string, error) {
	return r.startEdgeWith(data, edgeGzip)
}

// The file scenario's file: staticSize bytes at staticPath under
// r.staticRoot(), which both systems serve as their root.
const (
	staticPath = "/static/f4k.bin"
	staticSize = 4096
)

func (r *runner) staticRoot() string { return filepath.Join(r.dir, "www") }

// writeStaticFile writes the file the file scenario asks for.
func (r *runner) writeStaticFile() error {
	file := filepath.Join(r.staticRoot(), filepath.FromSlash(staticPath))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	b := make([]byte, staticSize)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return os.WriteFile(file, b, 0o644)
}

// edgeFiles is the route of the "edgeproxy files" system: files from the
// static root for /static/, everything else proxied as in the bench config.
func (r *runner) edgeFiles() string {
	return fmt.Sprintf(`
[[routes]]
path_prefix = "/static/"
root = %q
`, r.staticRoot())
}

func (r *runner) startEdgeFiles(data string) (*exec.Cmd, string, error) {
	return r.startEdgeWith(data, r.edgeFiles())
}

// startEdgeWith starts edgeproxy with the bench config for data plus extra TOML.
func (r *runner) startEdgeWith(data, extra string) (*exec.Cmd, string, error) {
	return r.startEdgeBin(r.edgeBin, data, extra)
}

func (r *runner) startEdgeBin(bin, data, extra string) (*exec.Cmd, string, error) {
	if data == "" {
		data = dataSample
	}
	addr, admin := freeAddr(), freeAddr()
	cfg := filepath.Join(r.dir, "edge.toml")
	if err := os.WriteFile(cfg, []byte(r.edgeConfig(addr, admin, filepath.Join(r.dir, "edge-access.log"), data)+extra), 0o644); err != nil {
		return nil, "", err
	}
	cmd, err := r.start(r.sutCPUs, []string{r.gomaxprocs()}, bin, "-config", cfg)
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
worker_processes %[4]d;
worker_rlimit_nofile 240000;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 120000; }
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
        # The file scenario: a static file as operators serve it. types
        # gives .bin the Content-Type mime.types gives it (and edgeproxy
        # sends), without depending on where mime.types is installed.
        location /static/ {
            root %[5]s;
            sendfile on;
            tcp_nopush on;
            types { application/octet-stream bin; }
        }
        location /coupons/ {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache coupons;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
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
`, d, r.upstreamAddr, addr, r.s.cores, r.staticRoot())
}

func (r *runner) startNginx(string) (*exec.Cmd, string, error) {
	addr := freeAddr()
	cfg := filepath.Join(r.dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(r.nginxConfig(addr)), 0o644); err != nil {
		return nil, "", err
	}
	cmd, err := r.start(r.sutCPUs, nginxEnv, nginxBin(), "-c", cfg, "-e", filepath.Join(r.dir, "nginx-error.log"))
	if err != nil {
		return nil, "", err
	}
	return cmd, addr, waitListening(addr, 10*time.Second)
}

func (r *runner) startBare(string) (*exec.Cmd, string, error) {
	addr := freeAddr()
	cmd, err := r.start(r.sutCPUs, []string{r.gomaxprocs()}, r.benchBin, append([]string{"-serve", "bare", addr}, r.bodyFiles()...)...)
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
	if _, err := r.start(r.loadCPUs, nil, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir); err != nil {
		return err
	}
	if err := waitListening(r.redisAddr, 10*time.Second); err != nil {
		return err
	}
	denseFile := filepath.Join(r.dir, "dense.jsonl")
	if err := os.WriteFile(denseFile, append(bytes.Join(benchdata.Dense(), []byte("\n")), '\n'), 0o644); err != nil {
		return err
	}
	for _, d := range []struct{ prefix, file string }{{dataSample, filepath.Join(r.s.root, "testdata/coupons.jsonl")}, {dataDense, denseFile}} {
		cfg := filepath.Join(r.dir, "edge.toml")
		os.WriteFile(cfg, []byte(r.edgeConfig(freeAddr(), freeAddr(), "off", d.prefix)), 0o644)
		imp := exec.Command(r.edgeBin, "coupons", "import", "-config", cfg, d.file)
		if out, err := imp.CombinedOutput(); err != nil {
			return fmt.Errorf("import %s: %v\n%s", d.file, err, out)
		}
	}
	if err := r.captureMixed(); err != nil {
		return err
	}

	// The upstream serves the captured bodies too, for nginx's cache.
	edge, addr, err := r.startEdge(dataSample)
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
	if _, err := r.start(r.loadCPUs, []string{"GOMAXPROCS=1"}, r.benchBin, append([]string{"-serve", "upstream", r.upstreamAddr}, r.bodyFiles()...)...); err != nil {
		return err
	}
	return waitListening(r.upstreamAddr, 10*time.Second)
}

// captureMixed records edgeproxy's answers to the mixed nearby queries,
// which the bare server and nginx's upstream then answer byte for byte,
// and writes the wrk script that sends those queries in turn.
func (r *runner) captureMixed() error {
	edge, addr, err := r.startEdge(dataDense)
	if err != nil {
		return err
	}
	defer r.stop(edge)
	paths := benchdata.Paths("/coupons", mixedPoints)
	answers := make(map[string]string, len(paths))
	total := 0
	for _, p := range paths {
		b, err := httpGet("http://" + addr + p)
		if err != nil {
			return err
		}
		answers[p] = string(b)
		total += len(b)
	}
	r.logf("mixed nearby: %d points, answers %d bytes on average", len(paths), total/len(paths))
	b, _ := json.Marshal(answers)
	r.mixedAnswers = filepath.Join(r.dir, "mixed.answers.json")
	if err := os.WriteFile(r.mixedAnswers, b, 0o644); err != nil {
		return err
	}
	var lua strings.Builder
	lua.WriteString("-- the mixed nearby queries, in turn; requests are built once\nlocal paths = {\n")
	for _, p := range paths {
		fmt.Fprintf(&lua, "  %q,\n", p)
	}
	lua.WriteString(`}
local reqs = {}
local n = 0
init = function(args)
  for i, p in ipairs(paths) do reqs[i] = wrk.format("GET", p) end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
`)
	r.mixedScript = filepath.Join(r.dir, "mixed.lua")
	return os.WriteFile(r.mixedScript, []byte(lua.String()), 0o644)
}

// bodyFiles are the captured answers the bare server and the upstream
// serve: by position (/0, /1, /file/K) and, from the .answers.json file,
// by request URI.
func (r *runner) bodyFiles() []string {
	return append(append([]string(nil), r.bodies...), r.mixedAnswers)
}

// mixedPoints is how many different points the mixed nearby scenario asks
// about, in turn.
const mixedPoints = 200

const (
	pathByID   = "/coupons/tky-00001"
	pathNearby = "/coupons/nearby?lat=35.681&lon=139.767&radius_m=700" // about 210 candidates
)

// nginxEnv keeps glibc's malloc from giving the heap's top back after
// every large response: nginx allocates its proxy buffers (1 MiB here) per
// request and frees them at its end, and glibc then trims the heap with
// brk, whose TLB flush and the page faults of growing it again cost
// nginx 4.6 ms of a 1 MiB request on some of these virtual machines
// (perf: 42% of nginx's CPU in flush_tlb_mm_range under brk), against
// 0.9 ms on others. The anchor is made as strong as it can be, not left
// to the host's luck.
var nginxEnv = []string{"GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=16777216"}
