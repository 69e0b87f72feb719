package codec

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// hostileFrames are seeds that attack the walker: impossible counts and
// lengths, deep nesting, never-used bytes, duplicate and odd keys.
func hostileFrames(t testing.TB) [][]byte {
	return [][]byte{
		{},
		x(t, "df ffffffff 00"),
		x(t, "dd ffffffff 00"),
		act(x(t, "dd ffffffff")),
		act(x(t, "df ffffffff")),
		act(x(t, "db ffffffff")),
		act(x(t, "c6 ffffffff")),
		act(x(t, "c9 ffffffff 01")),
		x(t, "81 db ffffffff 00"),
		act(nestArrays(MaxDepth + 1)),
		act(nestMaps(MaxDepth + 1)),
		act(x(t, "c1")),
		cur(x(t, "cb 7ff8000000000000"), []byte{1}),
		cur(x(t, "ca 7f800000"), []byte{1}),
		obj(t, "t", "act", "t", "act", "d", 1),
		obj(t, []byte{0xc4, 1, 't'}, "act", "d", 1),
		manyKeys(t, MaxKeys+1),
		cat(act([]byte{1}), []byte{1}),
	}
}

// FuzzDecode checks that Decode never panics, that what it accepts is
// consistent with Validate and with the encoders, and (feeding the input
// split at an arbitrary point, as a transport might) that no proper prefix
// of an accepted message is accepted too.
func FuzzDecode(f *testing.F) {
	for _, frame := range append(validFrames(f), hostileFrames(f)...) {
		f.Add(frame, uint16(len(frame)/2))
	}
	f.Fuzz(func(t *testing.T, frame []byte, cut uint16) {
		var m Message
		err := Decode(frame, &m)
		if err != nil {
			checkError(t, err)
		} else {
			checkAccepted(t, frame, &m)
		}
		k := int(cut) % (len(frame) + 1)
		head, tail := frame[:k], frame[k:]
		var mh, mt Message
		errHead, errTail := Decode(head, &mh), Decode(tail, &mt)
		if err == nil && k < len(frame) && errHead == nil {
			t.Fatalf("both % x and its prefix % x decode", frame, head)
		}
		for _, e := range []error{errHead, errTail} {
			if e != nil {
				checkError(t, e)
			}
		}
	})
}

func checkError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) || len(err.Error()) >= 100 {
		t.Fatalf("error %q: want ErrMalformed and a short text", err)
	}
}

// checkAccepted holds a message Decode accepted to what the rest of the
// package says about it.
func checkAccepted(t *testing.T, frame []byte, m *Message) {
	t.Helper()
	if err := Validate(frame, MaxDepth+1); err != nil {
		t.Fatalf("Decode accepts % x but Validate(MaxDepth+1) says %v", frame, err)
	}
	var again Message
	switch m.Kind {
	case KindCursor:
		if math.IsNaN(m.X) || math.IsInf(m.X, 0) || math.IsNaN(m.Y) || math.IsInf(m.Y, 0) || m.Data != nil {
			t.Fatalf("cursor %+v", m)
		}
		err := Decode(AppendCursor(nil, m.X, m.Y), &again)
		if err != nil || again.Kind != KindCursor || !sameFloat(again.X, m.X) || !sameFloat(again.Y, m.Y) {
			t.Fatalf("cursor %+v does not survive AppendCursor: %+v, %v", m, again, err)
		}
	case KindAction:
		checkAliases(t, frame, m.Data)
		if err := Validate(m.Data, MaxDepth); err != nil {
			t.Fatalf("action data % x: %v", m.Data, err)
		}
		if err := Decode(AppendAction(nil, m.Data), &again); err != nil || !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("action data % x does not survive AppendAction: % x, %v", m.Data, again.Data, err)
		}
	default:
		t.Fatalf("Decode accepted % x with kind %d", frame, m.Kind)
	}
}

// FuzzValidate compares Validate with the msgpack library's own walk
// (Decoder.Skip) on small inputs, where the library's trust in length
// prefixes costs nothing. The library skips rather than unmarshals into
// `any` because that refuses valid MessagePack it has no Go type for (ext
// types it does not know, maps with non-string keys).
func FuzzValidate(f *testing.F) {
	for _, frame := range append(validFrames(f), hostileFrames(f)...) {
		f.Add(frame, uint8(MaxDepth))
	}
	f.Add(nestArrays(3), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, depth uint8) {
		err := Validate(b, int(depth))
		if err != nil {
			checkError(t, err)
		} else if err := Validate(b, int(depth)+1); err != nil {
			t.Fatalf("Validate(% x) accepts at depth %d, not at %d: %v", b, depth, depth+1, err)
		}
		if len(b) >= 64 {
			return
		}
		// No value in b can nest deeper than len(b), so at that depth
		// Validate judges structure alone, as the library does.
		ours := Validate(b, len(b))
		theirs := librarySkip(b)
		if (ours == nil) != (theirs == nil) {
			t.Fatalf("% x: Validate says %v, library says %v", b, ours, theirs)
		}
		if ours == nil {
			var v msgpack.RawMessage
			if err := msgpack.Unmarshal(b, &v); err != nil {
				t.Fatalf("% x: Validate accepts, msgpack.Unmarshal says %v", b, err)
			}
		}
	})
}

// librarySkip reports whether the library reads b as exactly one value.
func librarySkip(b []byte) error {
	r := bytes.NewReader(b)
	if err := msgpack.NewDecoder(r).Skip(); err != nil {
		return err
	}
	if r.Len() != 0 {
		return errTrailing
	}
	return nil
}
