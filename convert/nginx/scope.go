package nginx

// ctx is the set of nginx contexts a directive may appear in.
type ctx uint16

const (
	cMain ctx = 1 << iota
	cEvents
	cHTTP
	cServer
	cLocation
	cUpstream
	cIf    // if in server or location
	cLimit // limit_except
	cTypes // types / map bodies: read by their owner, never walked
)

func (k ctx) String() string {
	names := []string{"main", "events", "http", "server", "location", "upstream", "if", "limit_except", "types"}
	s := ""
	for i, n := range names {
		if k&(1<<i) != 0 {
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	return s
}

// list is an nginx array directive (proxy_set_header, add_header, allow …):
// a level inherits its parent's entries only if it has none of its own.
type list[T any] struct {
	items []T
	here  bool
}

func (l *list[T]) add(x T) {
	if !l.here {
		l.items, l.here = nil, true
	}
	l.items = append(l.items, x)
}

func (l list[T]) inherit() list[T] { return list[T]{items: l.items} }

// val is an inherited single value and the directive that set it.
type val[T any] struct {
	v   T
	d   *Directive
	set bool
}

func (x *val[T]) put(v T, d *Directive) { x.v, x.d, x.set = v, d, true }

type header struct {
	name, value string
	d           *Directive
	// authVar: proxy_set_header NAME $var where $var may be an
	// auth_request_set variable (settled in authKeys).
	authVar bool
}

type addHeader struct {
	name, value string
	always      bool
	d           *Directive
}

type errorPage struct {
	code, target string
	d            *Directive
}

// settings are the directives a block passes down to the blocks inside it.
type settings struct {
	proxyHeaders list[header]
	addHeaders   list[addHeader]
	hideHeaders  list[header]
	access       list[header] // name "allow"/"deny", value the address
	errorPages   list[errorPage]

	readTimeout    val[string]
	connectTimeout val[string]
	maxBody        val[string] // "" unlimited (client_max_body_size 0)
	bufferRequest  val[bool]
	intercept      val[bool]
	gzip           val[bool]
	gzipTypes      val[[]string]
	gzipMinLength  val[int]
	gzipLevel      val[string]
	authRealm      val[string] // "" = auth_basic off
	authFile       val[string]
	root           val[string]
	index          val[[]string]
	tryFiles       val[[]string]
	expires        val[string]
	accessLog      val[bool]
	defaultType    val[string]
	idleTimeout    val[string]
	realIPHeader   val[string]
	limitRate      val[string]
	realIPFrom     list[header]
	limitReqs      list[limitReq]
	limitReqStatus val[int]
	authRequest    val[string]
	authSets       list[header] // name the variable, value the auth answer's header
}

// child is what a nested block starts from.
func (s *settings) child() *settings {
	c := *s
	c.proxyHeaders = s.proxyHeaders.inherit()
	c.addHeaders = s.addHeaders.inherit()
	c.hideHeaders = s.hideHeaders.inherit()
	c.access = s.access.inherit()
	c.errorPages = s.errorPages.inherit()
	c.realIPFrom = s.realIPFrom.inherit()
	c.limitReqs = s.limitReqs.inherit()
	c.authSets = s.authSets.inherit()
	return &c
}

// scope is where a directive is read: its context, the settings it
// changes, and the server, location or upstream being built.
type scope struct {
	c    *converter
	kind ctx
	set  *settings
	srv  *serverScope
	loc  *locScope
	ups  *upstreamBlock
}

// need reports a capability a particular use of a directive needs.
func (s *scope) need(cs ...Capability) error {
	if m := s.c.caps.Missing(cs...); len(m) > 0 {
		return missingCaps(m)
	}
	return nil
}
