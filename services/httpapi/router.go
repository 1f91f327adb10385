// Package httpapi is the shared HTTP toolkit: a router over
// julienschmidt/httprouter whose handlers are plain http.Handlers, JSON
// decoding with limits, error rendering, request id / log / recover
// middleware, API-key authentication with scopes, the admin rate limiter,
// the audit hook and the OpenAPI document. It is a leaf: it imports no
// other service except errcode.
package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain wraps h so that mws run in order: mws[0] is outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			h = mws[i](h)
		}
	}
	return h
}

// Route is one registered (method, path) with its documentation.
type Route struct {
	Method string
	Path   string // httprouter syntax: /v1/admin/api-keys/:id
	Doc    Doc
}

type route struct {
	Route
	handler http.Handler
	rank    []int // per segment: 2 static, 1 parameter, 0 catch-all
}

type prefixUse struct {
	prefix string
	mws    []Middleware
}

// Router dispatches requests to plain http.Handlers.
//
// httprouter refuses a static segment beside a parameter
// (/contacts/import next to /contacts/:id) and two parameter names at one
// position (/contacts/:id next to /contacts/:contactId/preferences), both of
// which the route table needs. Router therefore keeps several httprouter
// trees ("layers"), puts each route into the first layer it fits, and on a
// request picks, among the layers that match, the most specific route
// (static beats parameter beats catch-all, segment by segment).
//
// Every OPTIONS request is answered 204 with CORS headers before routing;
// unknown routes and unsupported methods are 404 {"error":"Not Found"}.
type Router struct {
	routes []*route
	layers []*layer
	uses   []prefixUse
}

type layer struct {
	tree   *httprouter.Router
	routes []*route
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{} }

// Handle registers handler for method and path (httprouter syntax, ":name"
// parameters and a trailing "*name" catch-all). Registering the same method
// and path twice (also with other parameter names) panics, as does a
// malformed path. Register every route before serving: Router is not safe
// for registration concurrent with requests.
func (rt *Router) Handle(method, path string, handler http.Handler, doc Doc) {
	method = strings.ToUpper(method)
	for _, r := range rt.routes {
		if r.Method == method && shape(r.Path) == shape(path) {
			panic(fmt.Sprintf("httpapi: route %s %s registered twice (as %s)", method, path, r.Path))
		}
	}
	r := &route{Route: Route{Method: method, Path: path, Doc: doc}, handler: handler, rank: rankOf(path)}
	if _, err := buildTree([]*route{r}); err != nil {
		panic(fmt.Sprintf("httpapi: route %s %s: %v", method, path, err))
	}
	placed := false
	for _, l := range rt.layers {
		tree, err := buildTree(append(append([]*route(nil), l.routes...), r))
		if err != nil {
			continue
		}
		l.tree, l.routes, placed = tree, append(l.routes, r), true
		break
	}
	if !placed {
		tree, _ := buildTree([]*route{r})
		rt.layers = append(rt.layers, &layer{tree: tree, routes: []*route{r}})
	}
	rt.routes = append(rt.routes, r)
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(method, path string, fn http.HandlerFunc, doc Doc) {
	rt.Handle(method, path, fn, doc)
}

// Use runs mws (outermost first) around every request whose path is prefix
// or lies below it, before routing, so that for example an unknown path
// under /v1/admin still needs credentials. Several matching prefixes nest
// in registration order.
func (rt *Router) Use(prefix string, mws ...Middleware) {
	rt.uses = append(rt.uses, prefixUse{prefix: strings.TrimSuffix(prefix, "/"), mws: mws})
}

// Routes returns the registered routes in registration order.
func (rt *Router) Routes() []Route {
	out := make([]Route, len(rt.routes))
	for i, r := range rt.routes {
		out[i] = r.Route
	}
	return out
}

// ServeHTTP answers CORS preflights, applies prefix middleware and
// dispatches.
func (rt *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After")
	if req.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE, PATCH")
		if reqHeaders := req.Header.Get("Access-Control-Request-Headers"); reqHeaders != "" {
			h.Set("Access-Control-Allow-Headers", reqHeaders)
			h.Add("Vary", "Access-Control-Request-Headers")
		} else {
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var next http.Handler = http.HandlerFunc(rt.dispatch)
	for i := len(rt.uses) - 1; i >= 0; i-- {
		u := rt.uses[i]
		if underPrefix(req.URL.Path, u.prefix) {
			next = Chain(next, u.mws...)
		}
	}
	next.ServeHTTP(w, req)
}

func (rt *Router) dispatch(w http.ResponseWriter, req *http.Request) {
	r, ps := rt.lookup(req.Method, req.URL.Path)
	if r == nil && req.Method == http.MethodHead {
		r, ps = rt.lookup(http.MethodGet, req.URL.Path)
	}
	if r == nil {
		NotFound(w, req)
		return
	}
	if len(ps) > 0 {
		req = req.WithContext(contextWithParams(req.Context(), ps))
	}
	r.handler.ServeHTTP(w, req)
}

// NotFound writes the 404 {"error":"Not Found","code":"not_found"} body.
func NotFound(w http.ResponseWriter, req *http.Request) {
	WriteError(w, req, errcode.NotFound("Not Found"))
}

// matchProbe receives the route a layer matched: the handles stored in the
// httprouter trees only report which route they belong to; Router serves
// the request itself.
type matchProbe struct{ route *route }

func (*matchProbe) Header() http.Header         { return http.Header{} }
func (*matchProbe) Write(b []byte) (int, error) { return len(b), nil }
func (*matchProbe) WriteHeader(int)             {}

func (rt *Router) lookup(method, path string) (*route, httprouter.Params) {
	var best *route
	var bestParams httprouter.Params
	for _, l := range rt.layers {
		handle, ps, _ := l.tree.Lookup(method, path)
		if handle == nil {
			continue
		}
		var p matchProbe
		handle(&p, nil, nil)
		if best == nil || moreSpecific(p.route.rank, best.rank) {
			best, bestParams = p.route, ps
		}
	}
	return best, bestParams
}

// buildTree builds one httprouter tree holding routes, or reports the
// conflict httprouter panics with.
func buildTree(routes []*route) (tree *httprouter.Router, err error) {
	tree = httprouter.New()
	tree.RedirectTrailingSlash = false
	tree.RedirectFixedPath = false
	tree.HandleMethodNotAllowed = false
	tree.HandleOPTIONS = false
	defer func() {
		if v := recover(); v != nil {
			tree, err = nil, fmt.Errorf("%v", v)
		}
	}()
	for _, r := range routes {
		r := r
		tree.Handle(r.Method, r.Path, func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
			w.(*matchProbe).route = r
		})
	}
	return tree, nil
}

func underPrefix(path, prefix string) bool {
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// shape is path with parameter names dropped: /a/:id and /a/:x match the
// same requests.
func shape(path string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, ":") {
			segs[i] = ":"
		} else if strings.HasPrefix(seg, "*") {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}

func rankOf(path string) []int {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	rank := make([]int, len(segs))
	for i, s := range segs {
		switch {
		case strings.Contains(s, "*"):
			rank[i] = 0
		case strings.Contains(s, ":"):
			rank[i] = 1
		default:
			rank[i] = 2
		}
	}
	return rank
}

// moreSpecific reports whether rank a beats rank b at the first segment
// where they differ; on a tie the earlier registration (b) wins.
func moreSpecific(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
