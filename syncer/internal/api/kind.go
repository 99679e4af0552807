package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// kind is the admin API of one kind of object, T its model type: the five
// routes under path (list, get, create with POST, replace or create with
// PUT, delete), with ETags and If-Match, the roles that may call them, the
// audit entry naming the token and the announcement of every write (all in
// Server.apply). What differs between kinds is the hooks; each kind is a
// declaration (apis.go, policies.go, orgs.go; keys.go uses list, get and
// delete).
type kind[T any] struct {
	name string // the store's kind: store.KindAPI
	path string // "/v1/apis"
	// id points at the object's id field.
	id func(*T) *string
	// validate is the model's own validation: (*model.API).Validate.
	validate func(*T) validation.Errors
	// check, when set, adds the problems that need the stored objects
	// (listen paths taken, unknown APIs) after validate's.
	check func(s *Server, r *http.Request, obj *T, errs *validation.Errors) error
	// stored, when set, brings a valid object to its stored form before it
	// is encoded.
	stored func(*T)
	// refs, when set, names the objects a put refers to: they must exist,
	// checked again inside the write (store.Change.Refs).
	refs func(*T) []store.Ref
	// inUse, when set, answers a delete before it is written (404, 409 with
	// the users named).
	inUse func(s *Server, r *http.Request, id string) error
	// ifUnused: a delete is refused inside the write while the object is
	// in use (store.Change.IfUnused), whatever inUse saw.
	ifUnused bool
}

// routes returns the kind's routes on s: read may list and get, write may
// create, replace and delete.
func (k *kind[T]) routes(s *Server, read, write roles) []route {
	h := k.on(s)
	return []route{
		{method: "POST", path: k.path, allow: write, handle: h.create},
		{method: "GET", path: k.path, allow: read, handle: h.list},
		{method: "GET", path: k.path + "/{id}", allow: read, handle: h.get},
		{method: "PUT", path: k.path + "/{id}", allow: write, handle: h.put},
		{method: "DELETE", path: k.path + "/{id}", allow: write, handle: h.delete},
	}
}

// on returns the kind's handlers on s.
func (k *kind[T]) on(s *Server) kindHandlers[T] { return kindHandlers[T]{k, s} }

type kindHandlers[T any] struct {
	*kind[T]
	s *Server
}

func (h kindHandlers[T]) list(w http.ResponseWriter, r *http.Request) error {
	return h.s.list(w, r, h.name)
}

func (h kindHandlers[T]) get(w http.ResponseWriter, r *http.Request) error {
	return h.s.get(w, r, h.name)
}

// create is POST: refused (409) when the id exists.
func (h kindHandlers[T]) create(w http.ResponseWriter, r *http.Request) error {
	obj, body, err := h.decode(r, "")
	if err != nil {
		return err
	}
	id := *h.id(obj)
	if err := h.s.apply(w, r, h.putChange(id, body, obj, store.Change{Create: true})); err != nil {
		return err
	}
	w.Header().Set("Location", h.path+"/"+id)
	written(w, http.StatusCreated, body)
	return nil
}

// put is PUT: replaces the object (If-Match, when given, must be its
// ETag), or creates it (201).
func (h kindHandlers[T]) put(w http.ResponseWriter, r *http.Request) error {
	obj, body, err := h.decode(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := *h.id(obj)
	_, _, getErr := h.s.opts.Store.GetRaw(r.Context(), h.name, id)
	if err := h.s.apply(w, r, h.putChange(id, body, obj, store.Change{IfMatch: r.Header.Get("If-Match")})); err != nil {
		return err
	}
	status := http.StatusOK
	if getErr != nil {
		status = http.StatusCreated
		w.Header().Set("Location", h.path+"/"+id)
	}
	written(w, status, body)
	return nil
}

// putChange completes c, the put of obj.
func (h kindHandlers[T]) putChange(id string, body []byte, obj *T, c store.Change) store.Change {
	c.Kind, c.Op, c.ID, c.Body = h.name, store.OpPut, id, body
	if h.refs != nil {
		c.Refs = h.refs(obj)
	}
	return c
}

func (h kindHandlers[T]) delete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if h.inUse != nil {
		if err := h.inUse(h.s, r, id); err != nil {
			return err
		}
	}
	if err := h.s.apply(w, r, store.Change{Kind: h.name, Op: store.OpDelete, ID: id, IfMatch: r.Header.Get("If-Match"), IfUnused: h.ifUnused}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decode reads, decodes (unknown fields refused) and validates the
// request's object, every problem with its field path; pathID, when set,
// is the id in the URL. It returns the object and its stored JSON.
func (h kindHandlers[T]) decode(r *http.Request, pathID string) (*T, []byte, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	obj := new(T)
	if errs := decodeStrict(raw, obj); len(errs) > 0 {
		return nil, nil, errs
	}
	var errs validation.Errors
	if id := h.id(obj); pathID != "" {
		if *id == "" {
			*id = pathID
		} else if *id != pathID {
			errs.Add("id", "must match the id in the path (%q)", pathID)
		}
	}
	errs = append(errs, h.validate(obj)...)
	if h.check != nil {
		if err := h.check(h.s, r, obj, &errs); err != nil {
			return nil, nil, err
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	if h.stored != nil {
		h.stored(obj)
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", h.name, err)
	}
	return obj, body, nil
}
