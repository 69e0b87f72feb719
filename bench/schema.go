package bench

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ReportSchema is report.schema.json, the JSON Schema (draft 2020-12) of
// bench-report.json as Report marshals it.
//
//go:embed report.schema.json
var ReportSchema []byte

// reportSchemaURL is the $id of report.schema.json; the compiler knows the
// schema by this name and never fetches it.
const reportSchemaURL = "https://github.com/relay-dev/relay/bench/report.schema.json"

// ErrReportInvalid means a report is not JSON or does not match
// report.schema.json. The error returned by ValidateReport wraps it.
var ErrReportInvalid = errors.New("bench: report does not match schema")

// SchemaViolation is one place where a report breaks its schema.
type SchemaViolation struct {
	// Path is a JSON pointer into the report, such as
	// /runs/0/totals/conns_held; "" is the whole document.
	Path    string
	Message string
}

// InvalidReportError lists every violation ValidateReport found, in the
// order of their paths. It unwraps to ErrReportInvalid and to the
// validator's own *jsonschema.ValidationError.
type InvalidReportError struct {
	Violations []SchemaViolation
	cause      error
}

func (e *InvalidReportError) Error() string {
	var b strings.Builder
	b.WriteString(ErrReportInvalid.Error())
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		path := v.Path
		if path == "" {
			path = "/"
		}
		b.WriteString(path)
		b.WriteString(": ")
		b.WriteString(v.Message)
	}
	return b.String()
}

func (e *InvalidReportError) Unwrap() []error { return []error{ErrReportInvalid, e.cause} }

// violationPrinter words the validator's messages; it is only read.
var violationPrinter = message.NewPrinter(language.English)

// compiledReportSchema compiles ReportSchema on first use. A failure here
// is a broken embedded file, which the tests catch.
var compiledReportSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ReportSchema))
	if err != nil {
		return nil, fmt.Errorf("bench: report.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // started and finished must be RFC 3339 date-times
	if err := c.AddResource(reportSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("bench: report.schema.json: %w", err)
	}
	sch, err := c.Compile(reportSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("bench: report.schema.json: %w", err)
	}
	return sch, nil
})

// ValidateReport checks bench-report.json bytes against report.schema.json.
// It returns nil, an *InvalidReportError naming each failing field by its
// JSON pointer, or an error wrapping ErrReportInvalid when the bytes are
// not JSON. It is safe for concurrent use.
func ValidateReport(jsonBytes []byte) error {
	sch, err := compiledReportSchema()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(jsonBytes))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %w", ErrReportInvalid, err)
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err // nil, or something other than a mismatch
	}
	var vs []SchemaViolation
	collectViolations(ve, &vs)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Path < vs[j].Path })
	return &InvalidReportError{Violations: vs, cause: ve}
}

// collectViolations appends the leaves of the validator's error tree: the
// inner nodes only say that a $ref or a group failed below them.
func collectViolations(e *jsonschema.ValidationError, out *[]SchemaViolation) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectViolations(c, out)
		}
		return
	}
	path := pointer(e.InstanceLocation)
	if req, ok := e.ErrorKind.(*kind.Required); ok {
		// Name the missing field itself, not the object that lacks it.
		for _, m := range req.Missing {
			*out = append(*out, SchemaViolation{Path: path + "/" + escapePointer(m), Message: "missing"})
		}
		return
	}
	*out = append(*out, SchemaViolation{Path: path, Message: e.ErrorKind.LocalizedString(violationPrinter)})
}

// pointer joins instance location tokens into a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}
