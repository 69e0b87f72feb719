package codec

// malformedError is a decode failure with a fixed text. Failures are
// predeclared values of this type, so rejecting a hostile frame allocates
// nothing, and the text is short enough for a WebSocket close reason (which
// must fit in 123 bytes).
type malformedError struct{ text string }

func (e *malformedError) Error() string { return e.text }

// Is makes every decode failure match ErrMalformed, so callers can map them
// all to close code 1007 with one errors.Is.
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(reason string) error {
	return &malformedError{text: "codec: malformed message: " + reason}
}

var (
	// ErrMalformed is wrapped by every error Decode and Validate return.
	ErrMalformed error = &malformedError{text: "codec: malformed message"}

	// ErrTooDeep means arrays and maps are nested deeper than allowed.
	ErrTooDeep = malformed("nesting too deep")
)

// Structural failures.
var (
	errEmpty     = malformed("empty message")
	errNotMap    = malformed("not a map")
	errTrailing  = malformed("trailing bytes")
	errBeyond    = malformed("length prefix beyond frame")
	errTruncated = malformed("value cut short")
	errNeverUsed = malformed("type byte 0xc1 is never used")
)

// Failures of the client message schema.
var (
	errKeyNotString = malformed("key is not a string")
	errTooManyKeys  = malformed("too many keys")
	errDupKey       = malformed("key given twice")
	errDupT         = malformed(`key "t" given twice`)
	errDupX         = malformed(`key "x" given twice`)
	errDupY         = malformed(`key "y" given twice`)
	errDupD         = malformed(`key "d" given twice`)
	errTMissing     = malformed("t missing")
	errTNotString   = malformed("t must be a string")
	errUnknownT     = malformed("unknown t")
	errXYMissing    = malformed("x/y missing")
	errNotNumber    = malformed("coordinate not a number")
	errNotFinite    = malformed("coordinate not finite")
	errDMissing     = malformed("d missing")
)
