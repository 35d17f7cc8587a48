package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/shopbridge/shopbridge"
)

// Evotor error codes. 2001 and 2002 are Evotor's documented codes; the others
// are shopbridge's, listed in the README.
const (
	CodeSyntax       = 2001 // 400: the request is not well-formed
	CodeMissingField = 2002 // 400: a required field is absent or empty
	CodeInvalidValue = 2003 // 400: a parameter has a value that cannot be used
	CodeUnauthorized = 1001 // 401: missing or wrong terminal token
	CodeForbidden    = 1002 // 403: the client address is not allowed
	CodeNotFound     = 2004 // 404: unknown bill or route
	CodeMethod       = 2005 // 405
	CodeConflict     = 2006 // 409: event id already used with other content
	CodeTooLarge     = 2007 // 413: body over 1 MiB
	CodeInternal     = 3000 // 500
	CodeUnavailable  = 3001 // 503: the store is unavailable
)

// errorStatus maps the project's error kinds to HTTP status and Evotor code.
func errorStatus(err error) (status, code int) {
	switch shopbridge.ErrorKind(err) {
	case shopbridge.EINVALID:
		return http.StatusBadRequest, CodeSyntax
	case shopbridge.EMISSING:
		return http.StatusBadRequest, CodeMissingField
	case shopbridge.EVALUE:
		return http.StatusBadRequest, CodeInvalidValue
	case shopbridge.EUNAUTHORIZED:
		return http.StatusUnauthorized, CodeUnauthorized
	case shopbridge.EFORBIDDEN:
		return http.StatusForbidden, CodeForbidden
	case shopbridge.ENOTFOUND:
		return http.StatusNotFound, CodeNotFound
	case shopbridge.EMETHOD:
		return http.StatusMethodNotAllowed, CodeMethod
	case shopbridge.ECONFLICT:
		return http.StatusConflict, CodeConflict
	case shopbridge.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case shopbridge.EUNAVAILABLE:
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

type errorItem struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Subject string `json:"subject"`
}

// errorBody is Evotor's documented error body.
func errorBody(err error) (status int, body []byte) {
	status, code := errorStatus(err)
	reason := err.Error()
	var e *shopbridge.Error
	if errors.As(err, &e) {
		reason = e.Message
	}
	if status == http.StatusInternalServerError {
		reason = "internal error" // details go to the log, not to terminals
	}
	body, _ = json.Marshal(struct {
		Errors []errorItem `json:"errors"`
	}{[]errorItem{{Code: code, Reason: reason, Subject: shopbridge.ErrorSubject(err)}}})
	return status, body
}
