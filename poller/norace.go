//go:build !race

package poller

func (s *Server) markHandoff() {}
