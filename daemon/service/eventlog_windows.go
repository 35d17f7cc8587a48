package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	ks "github.com/kardianos/service"
)

// eventHandler is a slog.Handler that writes each record, formatted as
// slog's text, to the Windows Event Log under the service's source.
type eventHandler struct {
	mu    *sync.Mutex
	buf   *bytes.Buffer
	text  slog.Handler
	log   ks.Logger
	level slog.Leveler
}

func newEventHandler(l ks.Logger, level slog.Leveler) *eventHandler {
	buf := &bytes.Buffer{}
	return &eventHandler{
		mu:    &sync.Mutex{},
		buf:   buf,
		text:  slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}),
		log:   l,
		level: level,
	}
}

// dropTime leaves the time out: the Event Log stamps each entry itself.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSpace(h.buf.String())
	switch {
	case r.Level >= slog.LevelError:
		return h.log.Error(msg)
	case r.Level >= slog.LevelWarn:
		return h.log.Warning(msg)
	default:
		return h.log.Info(msg)
	}
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(as)
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
