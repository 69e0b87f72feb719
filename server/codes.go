package server

// Close codes of PROTOCOL.md sections 2 and 3.
const (
	CloseGoingAway       = 1001 // node shutting down, or idle timeout
	CloseUnsupported     = 1003 // text frame
	CloseInvalidPayload  = 1007 // malformed message
	ClosePolicyViolation = 1008 // rate limit, token expired
	CloseTooBig          = 1009 // message over the size limit
	CloseInternalError   = 1011
	CloseTryAgainLater   = 1013 // slow consumer
)
