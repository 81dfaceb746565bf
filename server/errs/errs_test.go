package errs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestFromAndWrite(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{New(Forbidden, "forbidden", "no"), 403, "forbidden"},
		{fmt.Errorf("wrapped: %w", New(TooLarge, "too_large", "big")), 413, "too_large"},
		{errors.New("dial redis: password=hunter2"), 500, "internal_error"},
		{New(MethodNotAllowed, "method_not_allowed", "method not allowed"), 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		e := From(tc.err)
		w := httptest.NewRecorder()
		Write(w, e)
		var body Body
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q", tc.err, w.Body)
		}
		if w.Code != tc.status || body.Error != tc.code || body.Message == "" || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%v: %d %+v %v", tc.err, w.Code, body, w.Header())
		}
		if tc.status == http.StatusInternalServerError && (body.Message != "internal server error" || e.Err != tc.err) {
			t.Fatalf("internal detail leaked or cause lost: %+v", body)
		}
	}
}
