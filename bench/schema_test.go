package bench

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestValidateReportAcceptsSample(t *testing.T) {
	for name, r := range map[string]*Report{"sample": sampleReport(), "minimal": minimalReport()} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateReport(b); err != nil {
				t.Fatalf("ValidateReport: %v", err)
			}
		})
	}
}

// TestValidateReportRejectsBroken breaks a valid report one way at a time
// in its JSON form and checks the error names the field.
func TestValidateReportRejectsBroken(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(doc map[string]any)
		path   string // a violation must carry exactly this path
	}{
		{"missing runs", func(d map[string]any) { delete(d, "runs") }, "/runs"},
		{"empty runs", func(d map[string]any) { d["runs"] = []any{} }, "/runs"},
		{"null runs", func(d map[string]any) { d["runs"] = nil }, "/runs"},
		{"wrong schema id", func(d map[string]any) { d["schema"] = "relay-bench/v0" }, "/schema"},
		{"negative conns", func(d map[string]any) { docTotals(d, 0)["conns_held"] = -1 }, "/runs/0/totals/conns_held"},
		{"fractional conns", func(d map[string]any) { docTotals(d, 1)["conns_target"] = 1.5 }, "/runs/1/totals/conns_target"},
		{"negative cpu", func(d map[string]any) { docTotals(d, 0)["relay_cpu_seconds"] = -0.1 }, "/runs/0/totals/relay_cpu_seconds"},
		{"unknown target", func(d map[string]any) { docRun(d, 1)["target"] = "nginx" }, "/runs/1/target"},
		{"latency entry missing p99", func(d map[string]any) {
			delete(docObj(docPhase(d, 0, 1)["latency"])["cursor_cross"].(map[string]any), "p99")
		}, "/runs/0/phases/1/latency/cursor_cross/p99"},
		{"histogram not buckets", func(d map[string]any) {
			docObj(docPhase(d, 1, 0)["histograms"])["action_same"] = []any{1, 2}
		}, "/runs/1/phases/0/histograms/action_same/0"},
		{"missing goroutines_flat", func(d map[string]any) { delete(docTotals(d, 1), "goroutines_flat") }, "/runs/1/totals/goroutines_flat"},
		{"started not a date", func(d map[string]any) { d["started"] = "yesterday" }, "/started"},
		{"unknown field", func(d map[string]any) { d["extra"] = true }, ""},
		{"comparison missing ratio", func(d map[string]any) { delete(docObj(d["comparison"]), "mem_per_conn_ratio") }, "/comparison/mem_per_conn_ratio"},
		{"flag not a string", func(d map[string]any) { docObj(d["flags"])["conns"] = 100000 }, "/flags/conns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := sampleDoc(t)
			tt.mutate(doc)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			err = ValidateReport(b)
			if err == nil {
				t.Fatal("ValidateReport accepted a broken report")
			}
			if !errors.Is(err, ErrReportInvalid) {
				t.Errorf("error %v does not wrap ErrReportInvalid", err)
			}
			var ire *InvalidReportError
			if !errors.As(err, &ire) {
				t.Fatalf("error %T is not *InvalidReportError: %v", err, err)
			}
			var paths []string
			for _, v := range ire.Violations {
				paths = append(paths, v.Path)
			}
			t.Log(err)
			if !slices.Contains(paths, tt.path) {
				t.Errorf("violations at %q, want one at %q; error: %v", paths, tt.path, err)
			}
		})
	}
}

func TestValidateReportRejectsNonJSON(t *testing.T) {
	for _, in := range []string{"", "{", "not json", `{"schema": "relay-bench/v1",}`} {
		err := ValidateReport([]byte(in))
		if !errors.Is(err, ErrReportInvalid) {
			t.Errorf("ValidateReport(%q) = %v, want ErrReportInvalid", in, err)
		}
	}
}

// TestReportSchemaMatchesStruct walks Report by reflection beside
// report.schema.json: every json tag is a property and every property a
// tag, the non-omitempty tags are exactly the required ones, objects allow
// no other properties, and Go kinds meet JSON types (unsigned ones with a
// minimum of 0). A field added to report.go without the schema fails here.
func TestReportSchemaMatchesStruct(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(ReportSchema, &root); err != nil {
		t.Fatalf("report.schema.json: %v", err)
	}
	w := schemaWalker{t: t, defs: docObj(root["$defs"])}
	w.walk("Report", root, reflect.TypeFor[Report]())
	if w.structs < 10 {
		t.Errorf("walked %d structs, expected every type in report.go", w.structs)
	}
}

type schemaWalker struct {
	t       *testing.T
	defs    map[string]any
	structs int
}

var jsonMarshalerType = reflect.TypeFor[json.Marshaler]()

func (w *schemaWalker) walk(path string, node map[string]any, typ reflect.Type) {
	t := w.t
	node = w.resolve(path, node)
	if node == nil {
		return
	}
	types := schemaTypes(node)
	want := func(jsonType string) {
		t.Helper()
		if types != nil && !slices.Contains(types, jsonType) {
			t.Errorf("%s: Go %s, schema type %v lacks %q", path, typ, types, jsonType)
		}
	}
	if typ.Implements(jsonMarshalerType) {
		want("string") // time.Time is the only one in Report
		return
	}
	switch typ.Kind() {
	case reflect.Pointer:
		w.walk(path, node, typ.Elem())
	case reflect.Slice:
		want("array")
		w.walk(path+"[]", docObj(node["items"]), typ.Elem())
	case reflect.Map:
		want("object")
		w.walk(path+"{}", docObj(node["additionalProperties"]), typ.Elem())
	case reflect.Struct:
		want("object")
		w.walkStruct(path, node, typ)
	case reflect.String:
		if _, isConst := node["const"]; !isConst && node["enum"] == nil {
			want("string")
		}
	case reflect.Bool:
		want("boolean")
	case reflect.Int, reflect.Int64, reflect.Int32:
		want("integer")
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		want("integer")
		if m, _ := node["minimum"].(float64); node["minimum"] == nil || m < 0 {
			t.Errorf("%s: Go %s is unsigned, schema has no minimum 0", path, typ)
		}
	case reflect.Float64, reflect.Float32:
		want("number")
	default:
		t.Errorf("%s: Go kind %s not handled by this test", path, typ.Kind())
	}
}

func (w *schemaWalker) walkStruct(path string, node map[string]any, typ reflect.Type) {
	t := w.t
	w.structs++
	props := docObj(node["properties"])
	if node["additionalProperties"] != false {
		t.Errorf("%s: schema object allows additional properties", path)
	}
	var tags, required []string
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			t.Errorf("%s.%s: no json tag", path, f.Name)
			continue
		}
		tags = append(tags, name)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			required = append(required, name)
		}
		prop, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s.%s: json %q missing from schema properties", path, f.Name, name)
			continue
		}
		w.walk(path+"."+name, prop, f.Type)
	}
	for name := range props {
		if !slices.Contains(tags, name) {
			t.Errorf("%s: schema property %q has no field in Go", path, name)
		}
	}
	var schemaRequired []string
	for _, r := range node["required"].([]any) {
		schemaRequired = append(schemaRequired, r.(string))
	}
	sort.Strings(required)
	sort.Strings(schemaRequired)
	if !slices.Equal(required, schemaRequired) {
		t.Errorf("%s: schema requires %q, Go always writes %q", path, schemaRequired, required)
	}
}

// resolve follows a local $ref ("#/$defs/name").
func (w *schemaWalker) resolve(path string, node map[string]any) map[string]any {
	if node == nil {
		w.t.Errorf("%s: no schema", path)
		return nil
	}
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	def, found := w.defs[name].(map[string]any)
	if !ok || !found {
		w.t.Errorf("%s: unresolved $ref %q", path, ref)
		return nil
	}
	return def
}

// schemaTypes is the node's "type" as a list, nil when it has none.
func schemaTypes(node map[string]any) []string {
	switch v := node["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, s := range v {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

// sampleDoc is sampleReport in its generic JSON form, for breaking.
func sampleDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func docObj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func docRun(doc map[string]any, i int) map[string]any { return docObj(doc["runs"].([]any)[i]) }

func docTotals(doc map[string]any, i int) map[string]any { return docObj(docRun(doc, i)["totals"]) }

func docPhase(doc map[string]any, r, p int) map[string]any {
	return docObj(docRun(doc, r)["phases"].([]any)[p])
}
