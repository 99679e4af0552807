package model

// MethodAllowed reports whether methods, an Endpoint's or an AccessRight's
// Methods, allow the request method: empty or "*" allows every method,
// otherwise the method must be listed as sent (upper case, as validation
// requires). It does not allocate.
func MethodAllowed(methods []string, method []byte) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if m == "*" || m == string(method) {
			return true
		}
	}
	return false
}
