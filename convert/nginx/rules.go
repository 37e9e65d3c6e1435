package nginx

import "sort"

// carrier translates one directive in one scope. It returns nil when the
// directive is carried over, or a notCarried (blocking / ignored) that says
// why this use of it is not.
type carrier func(*scope, *Directive) error

// rule is one row of the directive table; the README's table is generated
// from these rows (readme.go), so the two cannot drift.
type rule struct {
	name string
	ctx  ctx
	// min and max bound the argument count (max -1: any), as nginx checks.
	min, max int
	// block: the directive takes a { } block; anyBlock: either (upstream
	// `server` vs http `server`).
	block, anyBlock bool
	// status is Carried for a rule with a carry function, else the fixed
	// Ignored or Blocking verdict.
	status Status
	// needs are the config keys every use needs; a carry function asks
	// for more (scope.need) when only some forms need them.
	needs []Capability
	// becomes says what the directive turns into, or why it is left out.
	becomes string
	carry   carrier
}

const (
	hsl   = cHTTP | cServer | cLocation
	hsli  = hsl | cIf
	sli   = cServer | cLocation | cIf
	li    = cLocation | cIf
	anyCx = cMain | cEvents | cHTTP | cServer | cLocation | cUpstream | cIf | cLimit
)

func ignoredRule(name string, c ctx, why string) rule {
	return rule{name: name, ctx: c, max: -1, anyBlock: true, status: Ignored, becomes: why}
}

func blockingRule(name string, c ctx, why string) rule {
	return rule{name: name, ctx: c, max: -1, anyBlock: true, status: Blocking, becomes: why}
}

func carried(name string, c ctx, min, max int, becomes string, fn carrier, needs ...Capability) rule {
	return rule{name: name, ctx: c, min: min, max: max, status: Carried, becomes: becomes, carry: fn, needs: needs}
}

func carriedBlock(name string, c ctx, min, max int, becomes string, fn carrier, needs ...Capability) rule {
	r := carried(name, c, min, max, becomes, fn, needs...)
	r.block = true
	return r
}

const (
	whyProcess = "process tuning; the Go runtime and edgeproxy's own limits take its place"
	whyBuffers = "buffer sizing; edgeproxy streams bodies with bounded memory of its own"
	whyLogFmt  = "edgeproxy writes its own access log format ([log] access_log)"
	whyTLS     = "TLS tuning; Go's defaults apply (TLS 1.2 and 1.3, modern cipher suites, session tickets)"
	whyNotYet  = "not translated by the converter yet"
	whyOnlyFor = "only has a meaning together with a directive that is itself reported"
)

// rules is the directive table.
func rules() []rule {
	return []rule{
		// Structure.
		carriedBlock("http", cMain, 0, 0, "the whole edgeproxy config", carryHTTP),
		{name: "server", ctx: cHTTP | cUpstream, max: -1, anyBlock: true, status: Carried,
			becomes: "http: a group of [[routes]] with host = its server_name; upstream: an entry of servers", carry: carryServer},
		carried("listen", cServer, 1, -1, "[server] listen (one port for all servers), tls with `ssl`", carryListen),
		carried("server_name", cServer, 1, -1, "host of the server's routes (one route per name)", carryServerName),
		carriedBlock("location", cServer|cLocation, 1, 2, "a [[routes]] entry: path_prefix, path_exact (=), path_regex (~, ~*), regex_stops (^~), name (@)", carryLocation),
		carriedBlock("upstream", cHTTP, 1, 1, "[upstreams.NAME]", carryUpstream),
		carriedBlock("map", cHTTP, 2, 2, "the WebSocket idiom `map $http_upgrade $connection_upgrade` is understood (websocket = true); other maps are reported", carryMap),
		carriedBlock("if", sli, 1, -1, "a route copy with match = { headers, query, cookies } for conditions on $http_, $arg_, $cookie_", carryIf, CapMatch),
		carriedBlock("limit_except", cLocation, 1, -1, "methods (others get 405 with Allow where nginx answers 403)", carryLimitExcept, CapMethods),
		carried("include", anyCx, 1, 1, "read in place, globs relative to the config's folder", carryNoop),

		// Upstreams.
		carried("keepalive", cUpstream, 1, 1, "nothing: edgeproxy always keeps pooled keep-alive connections (max_conns_per_server bounds them)", carryNoop),
		carried("keepalive_timeout", cHTTP|cServer|cLocation|cUpstream, 1, 2, "http/server: [server] idle_timeout; upstream: max_idle_time", carryKeepaliveTimeout),
		ignoredRule("keepalive_requests", cHTTP|cServer|cLocation|cUpstream, "edgeproxy reuses a connection for any number of requests"),
		ignoredRule("keepalive_time", cHTTP|cServer|cLocation|cUpstream, "edgeproxy reuses a connection for as long as it is healthy"),
		carried("least_conn", cUpstream, 0, 0, `balance = "least_conn"`, carryLeastConn),
		carried("ip_hash", cUpstream, 0, 0, `balance = "hash", hash_key = "$remote_addr"`, carryIPHash, CapHash),
		carried("hash", cUpstream, 1, 2, `balance = "hash" with hash_key (consistent hashing)`, carryHash, CapHash),
		carried("random", cUpstream, 0, 2, `balance = "random_two" for "random two"`, carryRandom, CapRandomTwo),
		ignoredRule("zone", cUpstream, "shared memory for workers; edgeproxy is one process"),

		// Proxying.
		carried("proxy_pass", li|cLimit, 1, 1, "upstream (an [upstreams] entry per address, https:// with tls_insecure_skip_verify as nginx does not verify, unix: sockets), strip_prefix when the URI part is \"/\"", carryProxyPass),
		carried("proxy_set_header", hsli, 2, 2, "request_headers; Host → upstream host; X-Forwarded-*, X-Request-Id, Connection \"\" are edgeproxy's own; Upgrade/Connection → websocket", carryProxySetHeader),
		carried("proxy_read_timeout", hsl, 1, 1, "route timeout", carryReadTimeout),
		carried("proxy_connect_timeout", hsl, 1, 1, "upstream connect_timeout", carryConnectTimeout),
		ignoredRule("proxy_send_timeout", hsl, "edgeproxy bounds the request with the upstream's timeouts"),
		carried("proxy_buffering", hsli, 1, 1, "nothing: edgeproxy streams answers as they come, which a client cannot tell from buffering", carryNoop),
		carried("proxy_request_buffering", hsl, 1, 1, "buffer_request = false for off", carryRequestBuffering, CapBufferRequest),
		carried("proxy_http_version", hsl, 1, 1, "nothing: edgeproxy speaks HTTP/1.1 with keep-alive to upstreams", carryNoop),
		carried("proxy_hide_header", hsl, 1, 1, "response_headers.remove", carryHideHeader, CapResponseHeaders),
		carried("proxy_intercept_errors", hsl, 1, 1, "intercept_errors", carryIntercept, CapInterceptErrors),
		carried("proxy_redirect", hsl, 1, 2, "`off` and `default` with a proxy_pass without URI part change nothing; other forms are reported", carryProxyRedirect),
		ignoredRule("proxy_buffer_size", hsl, whyBuffers),
		ignoredRule("proxy_buffers", hsl, whyBuffers),
		ignoredRule("proxy_busy_buffers_size", hsl, whyBuffers),
		ignoredRule("proxy_max_temp_file_size", hsl, whyBuffers),
		ignoredRule("proxy_temp_file_write_size", hsl, whyBuffers),
		ignoredRule("proxy_temp_path", hsl, whyBuffers),
		ignoredRule("proxy_headers_hash_max_size", hsl, whyProcess),
		ignoredRule("proxy_headers_hash_bucket_size", hsl, whyProcess),
		carried("proxy_next_upstream", hsl, 1, -1, "retries = servers - 1 for the default `error timeout`; other conditions are reported", carryNextUpstream),
		ignoredRule("proxy_next_upstream_tries", hsl, "edgeproxy retries each upstream's other servers once (retries)"),
		ignoredRule("proxy_next_upstream_timeout", hsl, "edgeproxy bounds retries with the route timeout"),
		ignoredRule("proxy_ignore_client_abort", hsl, "edgeproxy cancels the upstream request when the client goes"),
		blockingRule("proxy_pass_header", hsl, "edgeproxy passes upstream headers through unchanged except its own Server; "+whyNotYet),
		blockingRule("proxy_set_body", hsl, "edgeproxy forwards the client's body unchanged"),
		carried("proxy_pass_request_body", hsl, 1, 1, "`on` is what edgeproxy does; `off` only in a location auth_request asks (edgeproxy's sub-request sends no body)", carryPassRequestBody),
		blockingRule("proxy_pass_request_headers", hsl, "edgeproxy always forwards the client's headers"),
		blockingRule("proxy_method", hsl, "edgeproxy forwards the client's method"),
		blockingRule("proxy_ignore_headers", hsl, whyNotYet),
		blockingRule("proxy_cookie_domain", hsl, "edgeproxy does not rewrite Set-Cookie"),
		blockingRule("proxy_cookie_path", hsl, "edgeproxy does not rewrite Set-Cookie"),
		blockingRule("proxy_ssl_certificate", hsl, whyNotYet),
		blockingRule("proxy_ssl_certificate_key", hsl, whyNotYet),
		blockingRule("proxy_ssl_verify", hsl, whyNotYet),
		blockingRule("proxy_ssl_trusted_certificate", hsl, whyNotYet),
		blockingRule("proxy_ssl_name", hsl, whyNotYet),
		ignoredRule("proxy_ssl_server_name", hsl, whyOnlyFor+" (proxy_pass https://)"),
		ignoredRule("proxy_ssl_protocols", hsl, whyTLS),
		ignoredRule("proxy_ssl_session_reuse", hsl, whyTLS),
		blockingRule("proxy_cache_path", cHTTP, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_valid", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_key", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_use_stale", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_lock", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_bypass", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_methods", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_min_uses", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_background_update", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_cache_revalidate", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("proxy_no_cache", hsl, whyNotYet+" (routes.cache)"),
		blockingRule("fastcgi_pass", li, "edgeproxy forwards HTTP only"),
		blockingRule("uwsgi_pass", li, "edgeproxy forwards HTTP only"),
		blockingRule("scgi_pass", li, "edgeproxy forwards HTTP only"),
		blockingRule("grpc_pass", li, "edgeproxy forwards HTTP/1.1 only"),
		blockingRule("memcached_pass", li, "edgeproxy forwards HTTP only"),
		ignoredRule("fastcgi_param", hsl, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("fastcgi_index", hsl, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("fastcgi_split_path_info", cLocation, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("fastcgi_read_timeout", hsl, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("fastcgi_buffers", hsl, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("fastcgi_buffer_size", hsl, whyOnlyFor+" (fastcgi_pass)"),
		ignoredRule("uwsgi_param", hsl, whyOnlyFor+" (uwsgi_pass)"),
		ignoredRule("grpc_set_header", hsl, whyOnlyFor+" (grpc_pass)"),

		// Client side.
		carried("client_max_body_size", hsl, 1, 1, "[server] max_body_bytes, or the route's max_body_bytes where it differs (nginx's default 1m is written out)", carryMaxBody),
		ignoredRule("client_body_buffer_size", hsl, whyBuffers),
		ignoredRule("client_header_buffer_size", cHTTP|cServer, whyBuffers),
		ignoredRule("large_client_header_buffers", cHTTP|cServer, whyBuffers+"; [server] max_header_bytes bounds the head"),
		ignoredRule("client_body_temp_path", hsl, whyBuffers),
		ignoredRule("client_body_in_file_only", hsl, whyBuffers),
		ignoredRule("client_body_timeout", hsl, "edgeproxy bounds the whole request with [server] read_timeout"),
		ignoredRule("client_header_timeout", cHTTP|cServer, "edgeproxy bounds the whole request with [server] read_timeout"),
		ignoredRule("send_timeout", hsl, "edgeproxy bounds writes with [server] write_timeout"),
		ignoredRule("reset_timedout_connection", hsl, whyProcess),
		ignoredRule("lingering_close", hsl, whyProcess),
		ignoredRule("lingering_time", hsl, whyProcess),
		ignoredRule("lingering_timeout", hsl, whyProcess),
		carried("underscores_in_headers", cHTTP|cServer, 1, 1, "`on` is what edgeproxy does (headers with _ pass); `off` is reported", carryUnderscores),
		ignoredRule("ignore_invalid_headers", cHTTP|cServer, "edgeproxy answers 400 to malformed heads"),
		ignoredRule("http2", cHTTP|cServer, "edgeproxy speaks HTTP/1.1; clients fall back through ALPN"),
		ignoredRule("http2_max_concurrent_streams", cHTTP|cServer, "edgeproxy speaks HTTP/1.1"),
		ignoredRule("http2_push_preload", hsl, "edgeproxy speaks HTTP/1.1"),

		// Answers and headers.
		carried("return", sli, 1, 2, "return with location (3xx) or body", carryReturn, CapReturn),
		carried("rewrite", sli, 2, 3, "permanent/redirect at server level: a path_regex route that returns 301/302; others are reported", carryRewrite, CapPathRegex, CapReturn),
		carried("error_page", hsli, 2, -1, "error_pages (a path keeps the status; `= @name` answers with the named route's)", carryErrorPage, CapErrorPages),
		carried("add_header", hsli, 2, 3, "response_headers.add (always → response_headers.always)", carryAddHeader, CapResponseHeaders),
		carried("expires", hsli, 1, 2, "expires of a file route (needs routes.expires)", carryExpires),
		carried("default_type", hsl, 1, 1, "content_type of return routes", carryDefaultType),
		blockingRule("charset", hsli, "edgeproxy does not add a charset to Content-Type"),
		ignoredRule("source_charset", hsli, "edgeproxy does not recode bodies"),
		ignoredRule("server_tokens", hsl, "edgeproxy names itself in Server; nginx's version is not shown either way"),
		ignoredRule("types", cHTTP|cServer|cLocation, "edgeproxy's file routes know the common types"),
		ignoredRule("types_hash_max_size", hsl, whyProcess),
		ignoredRule("types_hash_bucket_size", hsl, whyProcess),
		blockingRule("absolute_redirect", hsl, whyNotYet),
		blockingRule("server_name_in_redirect", hsl, whyNotYet),
		blockingRule("port_in_redirect", hsl, whyNotYet),
		blockingRule("sub_filter", hsl, "edgeproxy does not edit bodies"),
		ignoredRule("sub_filter_once", hsl, whyOnlyFor+" (sub_filter)"),
		ignoredRule("sub_filter_types", hsl, whyOnlyFor+" (sub_filter)"),
		blockingRule("ssi", hsli, "edgeproxy does not edit bodies"),
		blockingRule("add_trailer", hsli, whyNotYet),
		blockingRule("set", sli, "nginx variables set by the config are not supported"),
		blockingRule("stub_status", sli, "edgeproxy's status is /status and /metrics on the admin listener"),
		carried("internal", cLocation, 0, 0, "internal = true (reached only through error_page, try_files or X-Accel-Redirect)", carryInternal, CapInternal),

		// Files.
		carried("root", hsli, 1, 1, "root of a file route (needs routes.root; also finds error_page files)", carryRoot),
		carried("alias", cLocation, 1, 1, "root, when the alias ends with the location's path", carryAlias),
		carried("index", hsl, 1, -1, "index of a file route", carryIndex),
		carried("try_files", cServer|cLocation, 2, -1, "try_files of a file route (needs routes.try_files)", carryTryFiles),
		blockingRule("autoindex", hsl, "edgeproxy does not list folders"),
		ignoredRule("sendfile", hsli, whyProcess),
		ignoredRule("sendfile_max_chunk", hsl, whyProcess),
		ignoredRule("tcp_nopush", hsl, whyProcess),
		ignoredRule("tcp_nodelay", hsl, whyProcess),
		ignoredRule("aio", hsl, whyProcess),
		ignoredRule("directio", hsl, whyProcess),
		ignoredRule("output_buffers", hsl, whyBuffers),
		ignoredRule("postpone_output", hsl, whyBuffers),
		ignoredRule("read_ahead", hsl, whyProcess),
		ignoredRule("open_file_cache", hsl, whyProcess),
		ignoredRule("open_file_cache_valid", hsl, whyProcess),
		ignoredRule("open_file_cache_min_uses", hsl, whyProcess),
		ignoredRule("open_file_cache_errors", hsl, whyProcess),
		ignoredRule("etag", hsl, "edgeproxy's file routes send their own validators"),
		ignoredRule("if_modified_since", hsl, "edgeproxy's file routes answer conditional requests themselves"),
		ignoredRule("log_not_found", hsl, whyLogFmt),
		ignoredRule("disable_symlinks", hsl, whyProcess),

		// Compression.
		carried("gzip", hsli, 1, 1, "[compression] enabled with gzip; compress = false where off", carryGzip, CapCompress),
		carried("gzip_types", hsl, 1, -1, "[compression] types (text/html always included, as nginx does)", carryGzipTypes, CapCompress),
		carried("gzip_min_length", hsl, 1, 1, "[compression] min_bytes", carryGzipMinLength, CapCompress),
		carried("gzip_comp_level", hsl, 1, 1, `[compression] level ("fastest" 1–3, "default" 4–6, "best" 7–9)`, carryGzipLevel, CapCompress),
		carried("gzip_vary", hsl, 1, 1, "nothing: edgeproxy always sends Vary: Accept-Encoding with a compressed answer", carryNoop),
		carried("gzip_proxied", hsl, 1, -1, "nothing for `any`; other values are reported (edgeproxy compresses whether or not a request has Via)", carryGzipProxied),
		ignoredRule("gzip_disable", hsl, "edgeproxy follows Accept-Encoding only"),
		ignoredRule("gzip_http_version", hsl, "edgeproxy compresses for HTTP/1.0 clients too"),
		ignoredRule("gzip_buffers", hsl, whyBuffers),
		blockingRule("gzip_static", hsl, "edgeproxy does not serve precompressed .gz files"),
		blockingRule("gunzip", hsl, "edgeproxy does not decompress"),

		// Access.
		carried("allow", hsli|cLimit, 1, 1, `access = ["allow CIDR", …]`, carryAllowDeny, CapAccess),
		carried("deny", hsli|cLimit, 1, 1, `access = [… "deny all"]`, carryAllowDeny, CapAccess),
		carried("auth_basic", hsl|cLimit, 1, 1, "realm (off: none)", carryAuthBasic, CapBasicAuth),
		carried("auth_basic_user_file", hsl|cLimit, 1, 1, "basic_auth_file", carryAuthBasicFile, CapBasicAuth),
		carried("satisfy", hsl, 1, 1, "`all` (the default) is what edgeproxy does; `any` is reported", carrySatisfy),
		carried("set_real_ip_from", hsl, 1, 1, "[server] trusted_proxies", carrySetRealIPFrom),
		carried("real_ip_header", hsl, 1, 1, "X-Forwarded-For is what trusted_proxies reads; others are reported", carryRealIPHeader),
		carried("real_ip_recursive", hsl, 1, 1, "nothing: edgeproxy skips every trusted address in X-Forwarded-For", carryNoop),
		carried("auth_request", hsl, 1, 1, "auth_request = { upstream, path } of the proxy_pass location the URI lands in (timeout: its proxy_read_timeout; the upstream's host: the Host it sends); off: none. edgeproxy's sub-request keeps the client's method, nginx's is GET", carryAuthRequest, CapAuthRequest),
		carried("auth_request_set", hsl, 2, 2, "`$var $upstream_http_NAME` sent by proxy_set_header NAME $var: auth_request copy_headers", carryAuthRequestSet, CapAuthRequest),
		carried("limit_req_zone", cHTTP, 2, 4, "key ($binary_remote_addr → $remote_addr), rate and max_keys (64 bytes per key, as nginx) of the rate_limit of each limit_req naming the zone", carryLimitReqZone, CapRateLimit),
		carried("limit_req", hsli, 1, 4, "rate_limit = { key, rate, burst, nodelay, mode = \"local\" } (one per route; delay=N only where it means none or all of the burst)", carryLimitReq, CapRateLimit),
		carried("limit_req_status", hsl, 1, 1, "429 is edgeproxy's answer; nginx's default 503 or another status is reported at limit_req", carryLimitReqStatus, CapRateLimit),
		ignoredRule("limit_req_log_level", hsl, "edgeproxy counts 429s in edgeproxy_ratelimit_limited_total"),
		blockingRule("limit_req_dry_run", hsl, "edgeproxy has no dry-run rate limit"),
		blockingRule("limit_conn_zone", cHTTP, "edgeproxy bounds connections with [server] max_conns only"),
		blockingRule("limit_conn", hsl, "edgeproxy bounds connections with [server] max_conns only"),
		ignoredRule("limit_conn_status", hsl, whyOnlyFor+" (limit_conn)"),
		carried("limit_rate", hsli, 1, 1, "limit_rate (bytes per second per response)", carryLimitRate, CapLimitRate),
		blockingRule("geo", cHTTP, "nginx variables set by the config are not supported"),
		blockingRule("split_clients", cHTTP, "nginx variables set by the config are not supported"),
		blockingRule("mirror", hsl, "edgeproxy does not mirror requests"),
		blockingRule("recursive_error_pages", hsl, whyNotYet),

		// TLS.
		carried("ssl_certificate", cHTTP|cServer, 1, 1, "[server] tls_cert_file", carrySSLCert),
		carried("ssl_certificate_key", cHTTP|cServer, 1, 1, "[server] tls_key_file", carrySSLKey),
		carried("ssl", cHTTP|cServer, 1, 1, "`on` marks the server's listen as TLS (old form of listen … ssl)", carrySSLOn),
		ignoredRule("ssl_protocols", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_ciphers", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_prefer_server_ciphers", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_session_cache", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_session_timeout", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_session_tickets", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_dhparam", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_ecdh_curve", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_buffer_size", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_stapling", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_stapling_verify", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_trusted_certificate", cHTTP|cServer, whyTLS),
		ignoredRule("ssl_early_data", cHTTP|cServer, whyTLS),
		blockingRule("ssl_client_certificate", cHTTP|cServer, "edgeproxy does not check client certificates"),
		blockingRule("ssl_verify_client", cHTTP|cServer, "edgeproxy does not check client certificates"),
		ignoredRule("ssl_verify_depth", cHTTP|cServer, whyOnlyFor+" (ssl_verify_client)"),

		// Logging and names.
		carried("access_log", hsli, 1, -1, "`off`: [log] access_log = \"off\", or access_log = false on the route; a path or format is edgeproxy's own", carryAccessLog),
		ignoredRule("log_format", cHTTP, whyLogFmt),
		ignoredRule("open_log_file_cache", hsl, whyLogFmt),
		ignoredRule("log_subrequest", hsl, whyLogFmt),
		ignoredRule("error_log", cMain|hsl, "edgeproxy logs to stderr ([log] level)"),
		ignoredRule("rewrite_log", sli|cHTTP, "edgeproxy logs to stderr ([log] level)"),
		carried("resolver", hsl, 1, -1, "[server] resolver", carryResolver, CapResolver),
		ignoredRule("resolver_timeout", hsl, "edgeproxy bounds lookups itself"),
		ignoredRule("server_names_hash_max_size", cHTTP, whyProcess),
		ignoredRule("server_names_hash_bucket_size", cHTTP, whyProcess),
		ignoredRule("variables_hash_max_size", cHTTP, whyProcess),
		ignoredRule("variables_hash_bucket_size", cHTTP, whyProcess),
		ignoredRule("map_hash_max_size", cHTTP, whyProcess),
		ignoredRule("map_hash_bucket_size", cHTTP, whyProcess),
		blockingRule("merge_slashes", cHTTP|cServer, "edgeproxy matches the path as received, as nginx does with `merge_slashes off`; "+whyNotYet),
		ignoredRule("chunked_transfer_encoding", hsl, "edgeproxy frames answers itself"),
		ignoredRule("msie_padding", hsl, "edgeproxy adds no padding to error pages"),

		// Process.
		ignoredRule("user", cMain, whyProcess),
		ignoredRule("worker_processes", cMain, whyProcess),
		ignoredRule("worker_rlimit_nofile", cMain, whyProcess+" (systemd LimitNOFILE)"),
		ignoredRule("worker_cpu_affinity", cMain, whyProcess),
		ignoredRule("worker_priority", cMain, whyProcess),
		ignoredRule("worker_shutdown_timeout", cMain, "edgeproxy drains for [server] shutdown_timeout"),
		ignoredRule("pid", cMain, whyProcess),
		ignoredRule("daemon", cMain, whyProcess+" (run under systemd)"),
		ignoredRule("master_process", cMain, whyProcess),
		ignoredRule("load_module", cMain, whyProcess),
		ignoredRule("pcre_jit", cMain, whyProcess),
		ignoredRule("thread_pool", cMain, whyProcess),
		ignoredRule("timer_resolution", cMain, whyProcess),
		ignoredRule("working_directory", cMain, whyProcess),
		ignoredRule("lock_file", cMain, whyProcess),
		ignoredRule("env", cMain, whyProcess),
		ignoredRule("events", cMain, whyProcess),
		ignoredRule("worker_connections", cEvents, whyProcess+" ([server] max_conns bounds connections)"),
		ignoredRule("use", cEvents, whyProcess),
		ignoredRule("multi_accept", cEvents, whyProcess),
		ignoredRule("accept_mutex", cEvents, whyProcess),
		ignoredRule("accept_mutex_delay", cEvents, whyProcess),
		blockingRule("stream", cMain, "edgeproxy proxies HTTP, not raw TCP/UDP"),
		blockingRule("mail", cMain, "edgeproxy proxies HTTP, not mail"),
	}
}

// ruleIndex maps directive names to their rule.
func ruleIndex() map[string]*rule {
	rs := rules()
	m := make(map[string]*rule, len(rs))
	for i := range rs {
		m[rs[i].name] = &rs[i]
	}
	return m
}

// sortedRules is the table in name order, as the README shows it.
func sortedRules() []rule {
	rs := rules()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	return rs
}
