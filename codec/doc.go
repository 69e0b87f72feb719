// Package codec owns the relay's wire format (PROTOCOL.md sections 2 and 3):
// strict decoding of client messages and encoding of server frames, both in
// MessagePack.
//
// Decoding treats every byte as hostile. Decode and Validate walk the frame
// themselves instead of handing it to a generic MessagePack decoder, because
// such decoders trust length prefixes: a six-byte frame claiming four billion
// elements must fail at once, not allocate. Every length prefix and element
// count is checked against the bytes that remain before it is used, nesting
// is limited to MaxDepth, and the walk touches each byte at most once, so its
// cost is bounded by the frame's length. Decoded messages alias the frame
// (Message.Data is a sub-slice of it); nothing is copied.
//
// Every decode failure wraps ErrMalformed and carries a short fixed reason fit
// for a WebSocket close frame. The errors are predeclared values, so failing
// allocates nothing either.
//
// Encoding appends to a buffer the caller owns. An Encoder keeps a little
// state between calls so that, once warm, encoding allocates nothing; it is
// not safe for concurrent use: give each goroutine (for example each tick
// worker) its own. The package-level functions, the decoders and the
// client-side helpers AppendCursor and AppendAction are safe for concurrent
// use.
package codec
