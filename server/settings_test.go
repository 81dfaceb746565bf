package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/config"
)

// The protocol gets the values it reads, each from the config field of its name: every
// field of protocol.Settings, set to a distinct non-zero value in the config, arrives.
func TestProtocolSettingsCarryTheConfig(t *testing.T) {
	cfg := &config.Config{}
	cv := reflect.ValueOf(cfg).Elem()
	st := reflect.TypeOf(protocolSettings(cfg))
	for i := 0; i < st.NumField(); i++ {
		name := st.Field(i).Name
		f := cv.FieldByName(name)
		if !f.IsValid() {
			t.Fatalf("protocol.Settings.%s has no config.Config field of its name", name)
		}
		switch f.Interface().(type) {
		case string:
			f.SetString("v-" + name)
		case int:
			f.SetInt(int64(100 + i))
		case bool:
			f.SetBool(true)
		case time.Duration:
			f.SetInt(int64(time.Duration(i+1) * time.Second))
		case []byte:
			f.SetBytes([]byte("k-" + name))
		default:
			t.Fatalf("config.Config.%s: a type this test does not fill (%s)", name, f.Type())
		}
	}
	got := reflect.ValueOf(protocolSettings(cfg))
	for i := 0; i < st.NumField(); i++ {
		name := st.Field(i).Name
		if want := cv.FieldByName(name).Interface(); !reflect.DeepEqual(got.Field(i).Interface(), want) {
			t.Errorf("Settings.%s = %v, want config's %v", name, got.Field(i).Interface(), want)
		}
	}
}
