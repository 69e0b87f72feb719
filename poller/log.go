package poller

import (
	"fmt"
	"log/slog"

	"github.com/lesismal/nbio/logging"
)

// slogAdapter routes nbio's package-level logger to slog. nbio's info lines
// (one per start, per listener) are noise for an operator and are dropped.
type slogAdapter struct{ l *slog.Logger }

func useSlog(l *slog.Logger) { logging.SetLogger(slogAdapter{l}) }

func (slogAdapter) Debug(string, ...any) {}
func (slogAdapter) Info(string, ...any)  {}
func (a slogAdapter) Warn(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nbio")
}
func (a slogAdapter) Error(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nbio")
}
