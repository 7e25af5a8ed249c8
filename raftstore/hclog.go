package raftstore

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// hclogAdapter routes hashicorp/raft's hclog output into zerolog, so that
// the store writes one JSON log stream.
type hclogAdapter struct {
	log   zerolog.Logger
	name  string
	args  []any
	level hclog.Level
}

func newHclog(l zerolog.Logger, name string) hclog.Logger {
	return &hclogAdapter{log: l, name: name, level: hclog.Info}
}

func (h *hclogAdapter) event(level hclog.Level) *zerolog.Event {
	switch level {
	case hclog.Trace:
		return h.log.Trace()
	case hclog.Debug:
		return h.log.Debug()
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return h.log.Info()
	case hclog.Warn:
		return h.log.Warn()
	default:
		return h.log.Error()
	}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level >= hclog.Warn && shuttingDown(args) {
		level = hclog.Debug // peers' connections failing while a member stops are expected
	}
	if level < h.level && level != hclog.NoLevel {
		return
	}
	e := h.event(level)
	if h.name != "" {
		e = e.Str("component", h.name)
	}
	all := append(append([]any{}, h.args...), args...)
	for i := 0; i+1 < len(all); i += 2 {
		k := fmt.Sprint(all[i])
		switch v := all[i+1].(type) {
		case hclog.Format:
			if len(v) > 0 {
				if f, ok := v[0].(string); ok {
					e = e.Str(k, fmt.Sprintf(f, v[1:]...))
					continue
				}
			}
			e = e.Interface(k, []any(v))
		case error:
			e = e.AnErr(k, v)
		case fmt.Stringer:
			e = e.Str(k, v.String())
		default:
			e = e.Interface(k, v)
		}
	}
	if len(all)%2 == 1 {
		e = e.Interface("extra", all[len(all)-1])
	}
	e.Msg(msg)
}

func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hclogAdapter) IsTrace() bool                 { return h.level <= hclog.Trace }
func (h *hclogAdapter) IsDebug() bool                 { return h.level <= hclog.Debug }
func (h *hclogAdapter) IsInfo() bool                  { return h.level <= hclog.Info }
func (h *hclogAdapter) IsWarn() bool                  { return h.level <= hclog.Warn }
func (h *hclogAdapter) IsError() bool                 { return h.level <= hclog.Error }
func (h *hclogAdapter) ImpliedArgs() []any            { return h.args }
func (h *hclogAdapter) Name() string                  { return h.name }
func (h *hclogAdapter) SetLevel(l hclog.Level)        { h.level = l }
func (h *hclogAdapter) GetLevel() hclog.Level         { return h.level }

func (h *hclogAdapter) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any{}, h.args...), args...)
	return &c
}

func (h *hclogAdapter) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := strings.TrimSpace(string(p))
		level := hclog.Info
		for _, l := range []struct {
			tag string
			lv  hclog.Level
		}{{"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}, {"[WARN]", hclog.Warn}, {"[DEBUG]", hclog.Debug}, {"[TRACE]", hclog.Trace}, {"[INFO]", hclog.Info}} {
			if strings.Contains(msg, l.tag) {
				level = l.lv
				msg = strings.TrimSpace(strings.Replace(msg, l.tag, "", 1))
				break
			}
		}
		h.Log(level, msg)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func shuttingDown(args []any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && strings.Contains(err.Error(), "transport shutdown") {
			return true
		}
	}
	return false
}

// ServerLog is an http.Server's error log (TLS handshake failures, a
// client that went away) written through zerolog at debug level: a port
// scanner must not fill the log.
func ServerLog(l zerolog.Logger) *log.Logger {
	return log.New(serverLogWriter{l}, "", 0)
}

type serverLogWriter struct{ log zerolog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	w.log.Debug().Str("component", "http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
